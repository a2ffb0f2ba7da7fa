"""A node's durable state in SQLite (WAL): the signed messages, WASM artifacts, members, version history.

    state = NodeState(data_dir / "node.sqlite3")
    state.add_message(envelope) -> bool     True when new (a replay is ignored: the id is the key)
    state.messages(kind=..., proposal_id=...) / state.inventory()
    state.put_artifact(wasm) -> sha256 / state.artifact(sha256) (re-hashed on every read)
    state.artifact_sizes() / state.delete_artifacts(shas)   what the garbage collection looks at and drops
    state.mark_late(id) / state.late_votes(proposal_id)      votes received after their proposal closed
    state.members() / state.add_member(node_id, url)
    state.record_version(component, version, sha256, event, reason) / state.history(component)
    state.get(key) / state.set(key, value)  small JSON values (applied proposals, config changes)

Everything replicated is a message; everything else here is this node's own bookkeeping, and all of it
survives a restart (a SIGKILL loses at most the write in progress: each write is one transaction).
One connection behind a lock: the event loop and its worker threads share it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .envelope import Envelope

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at REAL NOT NULL,
    body TEXT NOT NULL,
    signature TEXT NOT NULL,
    proposal_id TEXT,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_proposal ON messages(proposal_id, kind);
CREATE TABLE IF NOT EXISTS artifacts (sha256 TEXT PRIMARY KEY, wasm BLOB NOT NULL, stored_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members (node_id TEXT PRIMARY KEY, url TEXT, added_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    component TEXT NOT NULL,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    event TEXT NOT NULL,          -- "activated" | "reverted"
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- votes this node first received after their proposal closed (pulled from a peer): they count only once
-- a majority of the peers hold them too, so a backdated vote handed to one node decides nothing
CREATE TABLE IF NOT EXISTS late_votes (id TEXT PRIMARY KEY);
"""


class NodeState:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.writes = 0  # every write counts: a reader (the dashboard) sees that something changed
        self._db = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
        if "created_at_json" not in columns:
            # created_at exactly as signed (an int stays an int): the REAL column alone would turn 5 into
            # 5.0, which changes the message's id and breaks its signature for whoever fetches it.
            self._db.execute("ALTER TABLE messages ADD COLUMN created_at_json TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            self.writes += 1
            return self._db.execute(sql, args)

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ------------------------------------------------------------------ messages

    def add_message(self, envelope: Envelope) -> bool:
        # The message it is about: a proposal (or an evolution) itself, what a vote or report answers, the
        # evolution a migrant belongs to.
        proposal_id: str | None
        if envelope.kind in ("proposal", "evolution"):
            proposal_id = envelope.id
        else:
            proposal_id = envelope.body.get("proposal_id") or envelope.body.get("evolution")
        cursor = self._write(
            "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                envelope.id,
                envelope.kind,
                envelope.author,
                envelope.created_at,
                json.dumps(envelope.body),
                envelope.signature,
                proposal_id,
                time.time(),
                json.dumps(envelope.created_at),
            ),
        )
        return cursor.rowcount == 1

    def has_message(self, message_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM messages WHERE id = ?", (message_id,)))

    def message(self, message_id: str) -> Envelope | None:
        rows = self._read(
            "SELECT kind, body, author, created_at, signature, created_at_json FROM messages WHERE id = ?",
            (message_id,),
        )
        return _envelope(rows[0]) if rows else None

    def messages(self, kind: str | None = None, proposal_id: str | None = None) -> list[Envelope]:
        sql = "SELECT kind, body, author, created_at, signature, created_at_json FROM messages WHERE 1=1"
        args: list[Any] = []
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        if proposal_id is not None:
            sql += " AND proposal_id = ?"
            args.append(proposal_id)
        return [_envelope(row) for row in self._read(sql + " ORDER BY created_at, id", tuple(args))]

    def authored(self, kind: str, proposal_id: str, author: str) -> list[Envelope]:
        """One author's messages of a kind about one proposal (or evolution), oldest first."""
        rows = self._read(
            "SELECT kind, body, author, created_at, signature, created_at_json FROM messages"
            " WHERE proposal_id = ? AND kind = ? AND author = ? ORDER BY created_at, id",
            (proposal_id, kind, author),
        )
        return [_envelope(row) for row in rows]

    def count(self, kind: str, proposal_id: str, author: str) -> int:
        rows = self._read(
            "SELECT COUNT(*) FROM messages WHERE proposal_id = ? AND kind = ? AND author = ?",
            (proposal_id, kind, author),
        )
        return rows[0][0]

    def mark_late(self, message_id: str) -> None:
        self._write("INSERT OR IGNORE INTO late_votes VALUES (?)", (message_id,))

    def late_votes(self, proposal_id: str | None = None) -> set[str]:
        if proposal_id is None:
            return {row[0] for row in self._read("SELECT id FROM late_votes")}
        rows = self._read(
            "SELECT l.id FROM late_votes l JOIN messages m ON m.id = l.id WHERE m.proposal_id = ?",
            (proposal_id,),
        )
        return {row[0] for row in rows}

    def ids(self, kind: str) -> list[str]:
        return [
            row[0]
            for row in self._read("SELECT id FROM messages WHERE kind = ? ORDER BY created_at, id", (kind,))
        ]

    def mean_delay(self, since: float, exclude_author: str) -> float | None:
        """Mean seconds from creation to arrival here of the others' messages created since `since`."""
        rows = self._read(
            "SELECT AVG(received_at - created_at) FROM messages WHERE author != ? AND created_at >= ?",
            (exclude_author, since),
        )
        return rows[0][0]

    def inventory_after(self, seq: int) -> tuple[list[str], int]:
        """(ids stored after sequence number `seq`, the latest sequence number): what a peer pulls."""
        rows = self._read("SELECT rowid, id FROM messages WHERE rowid > ? ORDER BY rowid LIMIT 5000", (seq,))
        return [row[1] for row in rows], (rows[-1][0] if rows else seq)

    def inventory(self) -> list[str]:
        return [row[0] for row in self._read("SELECT id FROM messages ORDER BY id")]

    # ------------------------------------------------------------------ artifacts

    def put_artifact(self, wasm: bytes) -> str:
        sha = hashlib.sha256(wasm).hexdigest()
        self._write("INSERT OR IGNORE INTO artifacts VALUES (?, ?, ?)", (sha, bytes(wasm), time.time()))
        return sha

    def artifact(self, sha256: str) -> bytes | None:
        rows = self._read("SELECT wasm FROM artifacts WHERE sha256 = ?", (sha256,))
        if not rows:
            return None
        wasm = bytes(rows[0][0])
        return wasm if hashlib.sha256(wasm).hexdigest() == sha256 else None

    def artifact_sizes(self) -> dict[str, int]:
        return {sha: size for sha, size in self._read("SELECT sha256, length(wasm) FROM artifacts")}

    def delete_artifacts(self, shas: list[str]) -> None:
        for sha in shas:
            self._write("DELETE FROM artifacts WHERE sha256 = ?", (sha,))

    # ------------------------------------------------------------------ members

    def add_member(self, node_id: str, url: str | None) -> bool:
        cursor = self._write("INSERT OR IGNORE INTO members VALUES (?, ?, ?)", (node_id, url, time.time()))
        if cursor.rowcount == 0 and url:
            self._write("UPDATE members SET url = ? WHERE node_id = ?", (url, node_id))
        return cursor.rowcount == 1

    def remove_member(self, node_id: str) -> None:
        self._write("DELETE FROM members WHERE node_id = ?", (node_id,))

    def members(self) -> dict[str, str | None]:
        return {
            node_id: url for node_id, url in self._read("SELECT node_id, url FROM members ORDER BY node_id")
        }

    # ------------------------------------------------------------------ versions

    def record_version(self, component: str, version: str, sha256: str, event: str, reason: str) -> None:
        self._write(
            "INSERT INTO versions (component, version, sha256, event, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
            (component, version, sha256, event, reason, time.time()),
        )

    def history(self, component: str | None = None) -> list[dict]:
        sql = "SELECT seq, component, version, sha256, event, reason, at FROM versions"
        rows = self._read(
            sql + (" WHERE component = ? ORDER BY seq" if component else " ORDER BY seq"),
            (component,) if component else (),
        )
        keys = ("seq", "component", "version", "sha256", "event", "reason", "at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def live_versions(self, component: str) -> list[tuple[str, str]]:
        """(version, sha256) activated and not reverted, oldest first: what a restart re-activates."""
        live: dict[str, str] = {}
        for entry in self.history(component):
            if entry["event"] == "activated":
                live[entry["version"]] = entry["sha256"]
            else:
                live.pop(entry["version"], None)
        return list(live.items())

    # ------------------------------------------------------------------ small values

    def get(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set(self, key: str, value: Any) -> None:
        self._write(
            "INSERT INTO kv VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )


def _envelope(row: tuple) -> Envelope:
    kind, body, author, created_at, signature, created_at_json = row
    if created_at_json is not None:
        created_at = json.loads(created_at_json)
    return Envelope(
        kind=kind, body=json.loads(body), author=author, created_at=created_at, signature=signature
    )
