"""The Evolutionary Engine's memory: runs, attempts and results in SQLite, WASM artifacts on disk by SHA-256.

    store = Store(directory)               directory/engine.sqlite3 + directory/artifacts/<sha256>.wasm
    run_id = store.create_run(...)         a run: one search for one component
    attempt.id = store.add(attempt)        committed before it returns: a killed run loses only what was
                                           in flight
    store.candidates(run_id)               the run's attempts, read back as `Attempt`s
    store.record_result(...)               a measured held-out improvement, with its evidence
    store.put_artifact(wasm) -> sha256     atomic write (temp file, fsync, rename); verified on every read
    store.statistics()                     computed from the stored attempts, so it survives restarts

Concurrency. The database runs in WAL mode with foreign keys on and a busy timeout, so several processes
may read and write one store at once (writers queue, readers never block). Inside a process a `Store`
holds ONE connection guarded by a lock: any thread may call any method (the engine's asyncio loop and
its `to_thread` workers share one store), and calls are serialised, which is cheap next to evaluating a
candidate. Every write is its own `BEGIN IMMEDIATE` transaction. A process forked from one holding a
store opens its own connection on first use instead of sharing the parent's. The schema and its
migrations are in schema.py, what the statistics count in statistics.py.

JSON columns (run config, verification, metrics, evidence) round-trip exactly for JSON values: dicts
with string keys, lists, strings, ints of any size, bools, None and floats (shortest repr, so bit for
bit; NaN and infinities too). Tuples come back as lists. A NaN in a REAL column (score,
improvement_pct) is stored by SQLite as NULL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fsutil import atomic_writer
from .attempt import BASELINE, Attempt
from .schema import open_database, translate
from .statistics import Generation, engine_statistics

DATABASE_NAME = "engine.sqlite3"
ARTIFACTS_DIR = "artifacts"
ARTIFACT_SUFFIX = ".wasm"
RUNNING = "running"
DIRECTIONS = ("min", "max")
DEFAULT_BUSY_TIMEOUT_S = 30.0
STALE_TEMP_S = 3600.0  # temp files of a put_artifact killed mid-write are removed by cleanup after this

_SHA256 = re.compile(r"[0-9a-f]{64}")


class CorruptArtifact(UsageError):
    """An artifact file whose content no longer hashes to its name."""


@dataclass(frozen=True)
class RunRow:
    run_id: str
    component: str
    provider: str
    model: str
    seed: int | None
    config: dict
    direction: str  # "min" or "max": how best_candidates orders scores
    status: str  # "running" until finish_run
    reason: str
    best_candidate_id: int | None
    samples: int  # spent so far, as last reported by update_run_budget
    tokens_in: int
    tokens_out: int
    elapsed_s: float
    created_at: str
    updated_at: str
    finished_at: str | None


@dataclass(frozen=True)
class ResultRow:
    id: int
    run_id: str
    candidate_id: int | None
    component: str
    improvement_pct: float
    evidence: dict
    wasm_sha256: str
    created_at: str


_JSON_COLUMNS = frozenset({"config", "verification", "metrics", "evidence"})
_ATTEMPT_COLUMNS = tuple(f.name for f in fields(Attempt) if f.name not in ("id", "created_at"))


# -------------------------------------------------------------------------------------------- store


class Store:
    def __init__(self, directory: Path | str, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S):
        self.directory = Path(directory)
        self.database_path = self.directory / DATABASE_NAME
        self.artifacts_dir = self.directory / ARTIFACTS_DIR
        self.busy_timeout_s = busy_timeout_s
        try:
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(
                f"cannot create the engine store in {self.directory}: {error}; choose a writable directory"
            ) from None
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._db = self._open()

    # ---------------------------------------------------------------------------- connection

    def _open(self) -> sqlite3.Connection:
        db, self.journal_mode = open_database(self.database_path, self.busy_timeout_s)
        return db

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """The lock held and the connection, after reconnecting if this process was forked from the opener."""
        if os.getpid() != self._pid:  # the parent's connection and lock must not be touched here
            self._pid, self._lock, self._db = os.getpid(), threading.RLock(), None
            self._db = self._open()
        with self._lock:
            if self._db is None:
                raise UsageError(f"the store at {self.directory} is closed; open a new Store")
            yield self._db

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        """One transaction: committed if the block completes, rolled back if it raises."""
        with self._connection() as db:
            try:
                db.execute(begin)
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as error:
                translated = translate(error, self.database_path)
                if translated is error:
                    raise
                raise translated from error

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction; BEGIN IMMEDIATE takes the write lock at once, so writers queue."""
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: every query inside sees the same snapshot."""
        return self._transaction("BEGIN")

    def close(self) -> None:
        if os.getpid() != self._pid:  # a forked copy: the connection belongs to the parent
            self._db = None
            return
        with self._lock:
            if self._db is not None:
                self._db.close()
            self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def integrity_check(self) -> list[str]:
        """SQLite's own integrity check; an empty list when the database is sound."""
        with self._read() as db:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
        return [] if problems == ["ok"] else problems

    # ---------------------------------------------------------------------------------- runs

    def create_run(
        self,
        component: str,
        provider: str,
        model: str,
        seed: int | None,
        config: dict,
        *,
        direction: str = "min",
    ) -> str:
        if direction not in DIRECTIONS:
            raise UsageError(f"unknown objective direction {direction!r}; use 'min' or 'max'")
        config_json = _to_json(config, "run config")
        now = _now()
        while True:
            run_id = secrets.token_hex(6)
            try:
                with self._write() as db:
                    db.execute(
                        "INSERT INTO runs (run_id, component, provider, model, seed, config, direction,"
                        " status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, component, provider, model, seed, config_json, direction, RUNNING, now, now),
                    )
                return run_id
            except sqlite3.IntegrityError:  # a 48-bit id collided: draw another
                continue

    def get_run(self, run_id: str) -> RunRow:
        with self._read() as db:
            row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise self._unknown_run(db, run_id)
        return _row(RunRow, row)

    def list_runs(self, limit: int = 20) -> list[RunRow]:
        """The newest first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_row(RunRow, row) for row in rows]

    def resume_run(self, run_id: str) -> RunRow:
        """Marks a run as running again (for `--resume`) and returns it, with what it has spent so far."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET status = ?, reason = '', finished_at = NULL, updated_at = ?"
                " WHERE run_id = ?",
                (RUNNING, _now(), run_id),
            )
            if cursor.rowcount == 0:
                raise self._unknown_run(db, run_id)
        return self.get_run(run_id)

    def finish_run(self, run_id: str, status: str, reason: str, best_candidate_id: int | None) -> None:
        with self._write() as db:
            if best_candidate_id is not None:
                owner = db.execute(
                    "SELECT run_id FROM candidates WHERE id = ?", (best_candidate_id,)
                ).fetchone()
                if owner is None or owner[0] != run_id:
                    raise UsageError(
                        f"candidate {best_candidate_id} does not belong to run {run_id}; "
                        "pass one of its own candidates or None"
                    )
            now = _now()
            cursor = db.execute(
                "UPDATE runs SET status = ?, reason = ?, best_candidate_id = ?, finished_at = ?,"
                " updated_at = ? WHERE run_id = ?",
                (status, reason, best_candidate_id, now, now, run_id),
            )
            if cursor.rowcount == 0:
                raise self._unknown_run(db, run_id)

    def update_run_budget(
        self, run_id: str, samples: int, tokens_in: int, tokens_out: int, elapsed_s: float
    ) -> None:
        """Records the totals spent so far (not increments), so a resumed run continues its budgets."""
        if min(samples, tokens_in, tokens_out, elapsed_s) < 0:
            raise UsageError("budget totals cannot be negative")
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET samples = ?, tokens_in = ?, tokens_out = ?, elapsed_s = ?, updated_at = ?"
                " WHERE run_id = ?",
                (samples, tokens_in, tokens_out, float(elapsed_s), _now(), run_id),
            )
            if cursor.rowcount == 0:
                raise self._unknown_run(db, run_id)

    def _unknown_run(self, db: sqlite3.Connection, run_id: str) -> UsageError:
        latest = db.execute(
            "SELECT run_id, component, status, created_at FROM runs"
            " ORDER BY created_at DESC, rowid DESC LIMIT 5"
        ).fetchall()
        if not latest:
            return UsageError(
                f"no run {run_id!r} in {self.database_path}: the store has no runs yet; "
                "start a new run instead of resuming"
            )
        listing = ", ".join(
            f"{r['run_id']} ({r['component']}, {r['status']}, {r['created_at'][:19]})" for r in latest
        )
        return UsageError(
            f"no run {run_id!r} in {self.database_path}; the latest runs are: {listing}. "
            "Resume one of these, or start a new run"
        )

    # ----------------------------------------------------------------------------- candidates

    def add(self, attempt: Attempt) -> int:
        """Stores one attempt that has ended, as it is, and commits before returning its id."""
        if attempt.status is None or attempt.stage is None:
            raise UsageError("an attempt is stored once it has ended: give it a status and a stage first")
        values = {name: getattr(attempt, name) for name in _ATTEMPT_COLUMNS}
        values.update(
            language=attempt.language.value,
            status=attempt.status.value,
            stage=attempt.stage.value,
            verification=_to_json_or_none(attempt.verification, "verification"),
            metrics=_to_json_or_none(attempt.metrics, "metrics"),
            wasm_sha256=_check_sha(attempt.wasm_sha256) if attempt.wasm_sha256 else None,
            generation_s=float(attempt.generation_s),
            compile_s=float(attempt.compile_s),
            evaluation_s=float(attempt.evaluation_s),
            created_at=_now(),
        )
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._write() as db:
            try:
                cursor = db.execute(
                    f"INSERT INTO candidates ({columns}) VALUES ({marks})", tuple(values.values())
                )
            except sqlite3.IntegrityError:
                raise self._bad_reference(db, attempt.run_id, attempt.parent_id) from None
            return _inserted(cursor)

    def _bad_reference(self, db: sqlite3.Connection, run_id: str, parent_id: int | None) -> UsageError:
        if db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            return self._unknown_run(db, run_id)
        return UsageError(
            f"no candidate {parent_id} to be the parent; pass the id store.add returned, or None"
        )

    def candidates(self, run_id: str) -> list[Attempt]:
        """Every attempt of a run, in the order they were stored."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM candidates WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        return [_row(Attempt, row) for row in rows]

    def candidate(self, candidate_id: int) -> Attempt:
        with self._read() as db:
            row = db.execute("SELECT * FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
        if row is None:
            raise UsageError(
                f"no candidate {candidate_id} in {self.database_path}; list a run's candidates to find an id"
            )
        return _row(Attempt, row)

    def seen_hashes(self, run_id: str) -> set[str]:
        """The source hashes a run has already stored (empty hashes left out): never evaluate those again."""
        with self._read() as db:
            rows = db.execute(
                "SELECT DISTINCT source_hash FROM candidates WHERE run_id = ? AND source_hash != ''",
                (run_id,),
            )
            return {row[0] for row in rows}

    def best_candidates(
        self, run_id: str, limit: int = 10, *, direction: str | None = None, island: int | None = None
    ) -> list[Attempt]:
        """Scored candidates, best first by the run's direction (or `direction`); ties go to the earlier one.

        Only candidates with a score take part: give a score only to candidates that passed evaluation."""
        direction = direction or self.get_run(run_id).direction
        if direction not in DIRECTIONS:
            raise UsageError(f"unknown objective direction {direction!r}; use 'min' or 'max'")
        order = "ASC" if direction == "min" else "DESC"
        where = "run_id = ? AND score IS NOT NULL"
        params: list[object] = [run_id]
        if island is not None:
            where, params = where + " AND island = ?", params + [island]
        with self._read() as db:
            rows = db.execute(
                f"SELECT * FROM candidates WHERE {where} ORDER BY score {order}, id ASC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_row(Attempt, row) for row in rows]

    # -------------------------------------------------------------------------------- results

    def record_result(
        self,
        run_id: str,
        candidate_id: int | None,
        component: str,
        improvement_pct: float,
        evidence: dict,
        wasm_sha256: str,
    ) -> int:
        """A measured improvement with its evidence; the artifact it names is never removed by cleanup."""
        values = (
            run_id,
            candidate_id,
            component,
            improvement_pct,
            _to_json(evidence, "evidence"),
            _check_sha(wasm_sha256),
            _now(),
        )
        with self._write() as db:
            try:
                cursor = db.execute(
                    "INSERT INTO results (run_id, candidate_id, component, improvement_pct, evidence,"
                    " wasm_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
            except sqlite3.IntegrityError:
                if db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                    raise self._unknown_run(db, run_id) from None
                raise UsageError(
                    f"no candidate {candidate_id} in {self.database_path}; pass a stored candidate id or None"
                ) from None
            return _inserted(cursor)

    def results(self, component: str | None = None) -> list[ResultRow]:
        """Every recorded result (of one component, if given), oldest first."""
        with self._read() as db:
            if component is None:
                rows = db.execute("SELECT * FROM results ORDER BY id").fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM results WHERE component = ? ORDER BY id", (component,)
                ).fetchall()
        return [_row(ResultRow, row) for row in rows]

    def best_improvement_per_component(self) -> dict[str, float]:
        with self._read() as db:
            rows = db.execute(
                "SELECT component, MAX(improvement_pct) FROM results"
                " WHERE improvement_pct IS NOT NULL GROUP BY component ORDER BY component"
            )
            return {row[0]: row[1] for row in rows}

    # ------------------------------------------------------------------------------ artifacts

    def artifact_path(self, sha256: str) -> Path:
        """Where the artifact with this hash lives (whether or not it is stored)."""
        return self.artifacts_dir / (_check_sha(sha256) + ARTIFACT_SUFFIX)

    def has_artifact(self, sha256: str) -> bool:
        return self.artifact_path(sha256).is_file()

    def put_artifact(self, wasm: bytes) -> str:
        """Stores a module under its SHA-256 and returns the hash. Idempotent: storing it again only
        refreshes its mtime (it counts as new for cleanup), or rewrites a copy that was corrupted."""
        data = bytes(wasm)
        sha = hashlib.sha256(data).hexdigest()
        path = self.artifact_path(sha)
        try:
            if path.is_file() and _file_sha256(path) == sha:
                os.utime(path)
                return sha
            with atomic_writer(path) as handle:
                handle.write(data)
        except OSError as error:
            raise UsageError(
                f"cannot write artifact {sha} to {self.artifacts_dir}: {error}; "
                "check free space and permissions"
            ) from None
        return sha

    def get_artifact(self, sha256: str) -> bytes:
        """The module's bytes, after checking they still hash to `sha256`."""
        path = self.artifact_path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UsageError(
                f"no artifact {sha256} in {self.artifacts_dir}; it was never stored here or was cleaned up"
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256.lower():
            raise CorruptArtifact(
                f"artifact {path} is corrupt: its content hashes to {actual}, not {sha256.lower()}; "
                "delete the file and store the module again "
                "(rebuild the candidate, or re-fetch it from its proposal)"
            )
        return data

    def referenced_artifacts(self) -> set[str]:
        """Every hash a stored result or candidate names (whether or not the file is here)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT wasm_sha256 FROM results"
                " UNION SELECT wasm_sha256 FROM candidates WHERE wasm_sha256 IS NOT NULL"
            )
            return {row[0] for row in rows}

    def cleanup_artifacts(self, keep_latest: int = 5) -> list[str]:
        """Removes artifact files except the newest `keep_latest` (by mtime) and every one a stored result
        names; returns the hashes removed. Temp files left by a writer killed mid-write (older than an
        hour) are removed too, silently."""
        if keep_latest < 0:
            raise UsageError(f"keep_latest must be 0 or more, not {keep_latest}")
        with self._read() as db:
            protected = {row[0] for row in db.execute("SELECT DISTINCT wasm_sha256 FROM results")}
        artifacts = []
        now = time.time()
        for path in self.artifacts_dir.iterdir():
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed by another process meanwhile
                continue
            if path.suffix == ARTIFACT_SUFFIX and _SHA256.fullmatch(path.stem):
                artifacts.append((stat.st_mtime_ns, path.stem, path))
            elif path.name.startswith(".") and path.suffix == ".tmp" and now - stat.st_mtime > STALE_TEMP_S:
                path.unlink(missing_ok=True)
        artifacts.sort(reverse=True)  # newest first; equal mtimes by name, so the choice is stable
        removed = []
        for _, sha, path in artifacts[keep_latest:]:
            if sha not in protected:
                path.unlink(missing_ok=True)
                removed.append(sha)
        return removed

    # ----------------------------------------------------------------------------- statistics

    def statistics(self, run_id: str | None = None) -> dict:
        """The seed's statistics (statistics.py), from the stored attempts of one run or of all."""
        where, params = "operator != ?", [BASELINE]
        if run_id is not None:
            where, params = where + " AND run_id = ?", params + [run_id]
        columns = ", ".join(Generation._fields)
        with self._read() as db:
            rows = db.execute(
                f"SELECT {columns} FROM candidates WHERE {where} ORDER BY id", params
            ).fetchall()
        generations = [Generation(*row) for row in rows]
        return engine_statistics(generations, self.best_improvement_per_component())


# ---------------------------------------------------------------------------------------- helpers


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise UsageError(
            f"{what} cannot be stored as JSON: {error}; "
            "pass plain dicts, lists, strings, numbers, bools and None"
        ) from None


def _to_json_or_none(value: Any, what: str) -> str | None:
    return None if value is None else _to_json(value, what)


def _inserted(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:  # an INSERT into a rowid table always has one
        raise RuntimeError("sqlite3 reported no row id for an INSERT")
    return cursor.lastrowid


def _row(kind: type, row: sqlite3.Row):
    values = {}
    for field in fields(kind):
        value = row[field.name]
        if field.name in _JSON_COLUMNS and value is not None:
            value = json.loads(value)
        values[field.name] = value
    return kind(**values)


def _check_sha(sha256: str) -> str:
    sha = sha256.lower() if isinstance(sha256, str) else ""
    if not _SHA256.fullmatch(sha):
        raise UsageError(f"{sha256!r} is not a SHA-256 hex digest (64 hex characters)")
    return sha


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
