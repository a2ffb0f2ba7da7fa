"""The store's SQLite file: its schema as a list of migrations, and how a connection to it is opened.

    db, journal_mode = open_database(path, busy_timeout_s)   WAL, foreign keys, migrated to SCHEMA_VERSION
    translate(error, path)                                   a sqlite3 error as the UsageError to show

Schema changes are a plain list of functions, `MIGRATIONS`, applied in order; `PRAGMA user_version`
records how many have run. A store written by a newer synapse-ng (a higher version) is refused rather
than misread. The column names are the store's public vocabulary: `status` holds an `Outcome` value,
`stage` a `Stage` value (synapse_ng.outcome).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError


def _m1_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            component TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            seed INTEGER,
            config TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('min', 'max')),
            status TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            best_candidate_id INTEGER REFERENCES candidates(id),
            samples INTEGER NOT NULL DEFAULT 0,
            tokens_in INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            elapsed_s REAL NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE candidates (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            island INTEGER NOT NULL,
            generation INTEGER NOT NULL,
            parent_id INTEGER REFERENCES candidates(id),
            operator TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            tokens_in INTEGER NOT NULL,
            tokens_out INTEGER NOT NULL,
            language TEXT NOT NULL,
            source TEXT NOT NULL,
            source_hash TEXT NOT NULL,
            status TEXT NOT NULL,
            stage TEXT NOT NULL,
            message TEXT NOT NULL,
            compile_log TEXT NOT NULL,
            verification TEXT,
            metrics TEXT,
            score REAL,
            improvement_pct REAL,
            wasm_sha256 TEXT,
            generation_s REAL NOT NULL,
            compile_s REAL NOT NULL,
            evaluation_s REAL NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX candidates_by_run ON candidates(run_id, id)")
    db.execute("CREATE INDEX candidates_by_hash ON candidates(run_id, source_hash)")
    db.execute("CREATE INDEX candidates_by_wasm ON candidates(wasm_sha256) WHERE wasm_sha256 IS NOT NULL")
    db.execute(
        """CREATE TABLE results (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            candidate_id INTEGER REFERENCES candidates(id),
            component TEXT NOT NULL,
            improvement_pct REAL,
            evidence TEXT NOT NULL,
            wasm_sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX results_by_component ON results(component)")


# Append only: never edit or reorder a migration that has shipped; add a new function instead.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m1_initial]
SCHEMA_VERSION = len(MIGRATIONS)


def open_database(path: Path, busy_timeout_s: float) -> tuple[sqlite3.Connection, str]:
    """A connection in autocommit mode (every write is the caller's own BEGIN IMMEDIATE), with the
    schema brought up to date, and the journal mode it got (WAL unless the file system refuses it)."""
    try:
        db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as error:
        raise translate(error, path) from None
    db.row_factory = sqlite3.Row
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        journal_mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = FULL")  # a committed candidate survives a power cut, not only a kill
        _migrate(db, path)
    except BaseException as error:
        db.close()
        if isinstance(error, sqlite3.Error):
            raise translate(error, path) from None
        raise
    return db, journal_mode


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    if _check_version(db, path) == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")  # another process may be migrating too: re-read under the write lock
    try:
        version = _check_version(db, path)
        for migration in MIGRATIONS[version:]:
            migration(db)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _check_version(db: sqlite3.Connection, path: Path) -> int:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{path} has schema version {version}, but this synapse-ng knows only up to {SCHEMA_VERSION}: "
            "it was written by a newer synapse-ng; upgrade synapse-ng, or use another workspace directory"
        )
    return version


def translate(error: sqlite3.Error, path: Path) -> Exception:
    """A damaged or unopenable file as a UsageError that says what to do; any other error unchanged."""
    name = getattr(error, "sqlite_errorname", "")
    if (
        name in ("SQLITE_NOTADB", "SQLITE_CORRUPT")
        or "not a database" in str(error)
        or "malformed" in str(error)
    ):
        return UsageError(
            f"{path} is not a readable SQLite database ({error}); move it away "
            f"(e.g. mv {path} {path}.broken) and the engine will start a fresh store there"
        )
    if name == "SQLITE_CANTOPEN":
        return UsageError(f"cannot open {path} ({error}); check that the directory exists and is writable")
    return error
