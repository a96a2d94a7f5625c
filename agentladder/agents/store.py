"""The runtime's SQLite store: session state, memory, runs, reviews, audit log, trajectories, spans, jobs, signing keys,
vector indexes (:mod:`~agentladder.agents.index`).

One file holds everything a run leaves behind, so ``agentladder traces`` can
read it and a paused run can resume in another process. Every write is one
transaction; a connection is shared between threads behind a lock (the
runtime runs sync steps and tools in worker threads). ``":memory:"`` gives a
throw-away store for tests.

The production counterpart is any database behind the same methods; the
schema is plain SQL with JSON text columns.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentladder.data.io import sqlite_transaction
from agentladder.data.schema import Conversation, Message
from agentladder.errors import ConfigError

DEFAULT_DB_ENV = "AGENTLADDER_DB"
"""Environment variable naming the default store; unset, it is ``agentladder.db`` in the current folder."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_state (
    session TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (session, key));
CREATE TABLE IF NOT EXISTS memory (
    session TEXT NOT NULL, agent TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (session, agent, seq));
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, session TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    input TEXT, state TEXT, error TEXT, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    id TEXT PRIMARY KEY, session TEXT NOT NULL, run_id TEXT NOT NULL, step TEXT NOT NULL, reason TEXT NOT NULL,
    payload TEXT, status TEXT NOT NULL, decision TEXT, reviewer TEXT, note TEXT, created REAL NOT NULL, decided REAL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, session TEXT, run_id TEXT, step TEXT,
    event TEXT NOT NULL, data TEXT);
CREATE TABLE IF NOT EXISTS trajectories (
    id TEXT PRIMARY KEY, session TEXT, run_id TEXT, step TEXT, agent TEXT NOT NULL, model TEXT, status TEXT NOT NULL,
    created REAL NOT NULL, conversation TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spans (
    span_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL, start_ns INTEGER,
    end_ns INTEGER, status TEXT, session TEXT, attributes TEXT);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, tool TEXT NOT NULL, arguments TEXT NOT NULL, status TEXT NOT NULL,
    result TEXT, error TEXT, origin TEXT NOT NULL DEFAULT 'local', owner TEXT, heartbeat REAL,
    deadline REAL, attempts INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS signing_keys (
    key_id TEXT PRIMARY KEY, secret TEXT NOT NULL, created REAL NOT NULL, not_after REAL);
CREATE TABLE IF NOT EXISTS signing_nonces (
    nonce TEXT PRIMARY KEY, key_id TEXT NOT NULL, ts REAL NOT NULL, seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS vector_indexes (
    name TEXT PRIMARY KEY, embedder TEXT NOT NULL, fingerprint TEXT NOT NULL, dim INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vector_passages (
    index_name TEXT NOT NULL, id TEXT NOT NULL, text TEXT NOT NULL, metadata TEXT, vector BLOB NOT NULL,
    PRIMARY KEY (index_name, id));
CREATE INDEX IF NOT EXISTS audit_run ON audit (run_id);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS signing_nonces_seen ON signing_nonces (seen);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
CREATE INDEX IF NOT EXISTS reviews_status ON reviews (status);
"""


def default_db() -> str:
    return os.environ.get(DEFAULT_DB_ENV, "agentladder.db")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def to_json(value: Any) -> str:
    """JSON text of a value; pydantic models and dataclasses become their fields."""
    from pydantic import TypeAdapter

    return json.dumps(TypeAdapter(Any).dump_python(value, mode="json"), ensure_ascii=False)


class Store:
    """A SQLite file (or ``":memory:"``) holding everything the runtime persists."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = str(path if path is not None else default_db())
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                # Durable across a crash of the process; only a power cut can lose the last commits.
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction: everything inside lands, or nothing does."""
        with self._lock, sqlite_transaction(self._conn) as conn:
            yield conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params))

    # -- session state ---------------------------------------------------------------------------

    def state_get(self, session: str, key: str, default: Any = None) -> Any:
        rows = self.query("SELECT value FROM session_state WHERE session = ? AND key = ?", (session, key))
        return json.loads(rows[0]["value"]) if rows else default

    def state_set(self, session: str, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO session_state VALUES (?, ?, ?)", (session, key, to_json(value)))

    def state_all(self, session: str) -> dict[str, Any]:
        rows = self.query("SELECT key, value FROM session_state WHERE session = ? ORDER BY key", (session,))
        return {r["key"]: json.loads(r["value"]) for r in rows}

    # -- agent memory ----------------------------------------------------------------------------

    def memory(self, session: str, agent: str) -> list[Message]:
        rows = self.query("SELECT message FROM memory WHERE session = ? AND agent = ? ORDER BY seq", (session, agent))
        return [Message.model_validate_json(r["message"]) for r in rows]

    def remember(self, session: str, agent: str, messages: Sequence[Message]) -> None:
        with self.transaction() as db:
            (last,) = db.execute("SELECT COALESCE(MAX(seq), -1) FROM memory WHERE session = ? AND agent = ?",
                                 (session, agent)).fetchone()
            db.executemany("INSERT INTO memory VALUES (?, ?, ?, ?)",
                           [(session, agent, last + 1 + i, m.model_dump_json(exclude_none=True))
                            for i, m in enumerate(messages)])

    # -- runs ------------------------------------------------------------------------------------

    def run_create(self, run_id: str, session: str, kind: str, name: str, input: Any) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, 'running', ?, NULL, NULL, ?, ?)",
                       (run_id, session, kind, name, to_json(input), now, now))

    def run_update(self, run_id: str, *, status: str | None = None, state: Any = None, error: str | None = None) -> None:
        sets, params = ["updated = ?"], [time.time()]
        if status is not None:
            sets.append("status = ?")
            params.append(status)
        if state is not None:
            sets.append("state = ?")
            params.append(to_json(state))
        if error is not None:
            sets.append("error = ?")
            params.append(error)
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*params, run_id))

    def run_get(self, run_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            return None
        row = dict(rows[0])
        for key in ("input", "state"):
            row[key] = json.loads(row[key]) if row[key] is not None else None
        return row

    # -- audit log -------------------------------------------------------------------------------

    def audit(self, event: str, *, session: str | None = None, run_id: str | None = None, step: str | None = None,
              data: Any = None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO audit (ts, session, run_id, step, event, data) VALUES (?, ?, ?, ?, ?, ?)",
                       (time.time(), session, run_id, step, event, None if data is None else to_json(data)))

    def audit_log(self, *, session: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        where, params = _where({"session": session, "run_id": run_id})
        rows = self.query(f"SELECT * FROM audit {where} ORDER BY seq", params)
        return [{**dict(r), "data": json.loads(r["data"]) if r["data"] else None} for r in rows]

    # -- trajectories ----------------------------------------------------------------------------

    def trajectory_add(self, conversation: Conversation, *, session: str | None, run_id: str | None,
                       step: str | None, agent: str, model: str | None, status: str) -> str:
        tid = conversation.id or new_id("traj")
        conversation = conversation.model_copy(update={"id": tid})
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO trajectories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (tid, session, run_id, step, agent, model, status, time.time(),
                        conversation.model_dump_json(exclude_none=True)))
        return tid

    def trajectory(self, trajectory_id: str) -> Conversation:
        rows = self.query("SELECT conversation FROM trajectories WHERE id = ?", (trajectory_id,))
        if not rows:
            raise KeyError(f"no trajectory {trajectory_id!r} in {self.path}")
        return Conversation.model_validate_json(rows[0]["conversation"])

    def trajectories(self, **filters: Any) -> list[dict[str, Any]]:
        """Rows of the trajectories table (``conversation`` parsed), oldest first, filtered by equal columns."""
        where, params = _where(filters)
        rows = self.query(f"SELECT * FROM trajectories {where} ORDER BY created, id", params)
        return [{**dict(r), "conversation": Conversation.model_validate_json(r["conversation"])} for r in rows]

    def add_rewards(self, trajectory_id: str, rewards: dict[str, float]) -> Conversation:
        """Attach named rewards (a grader's or a reviewer's score) to a stored trajectory."""
        return self.annotate(trajectory_id, rewards=rewards)

    def annotate(self, trajectory_id: str, *, rewards: dict[str, float] | None = None,
                 metadata: dict[str, Any] | None = None) -> Conversation:
        """Merge rewards and metadata (a ``target`` for RL export, a label) into a stored trajectory."""
        with self.transaction() as db:
            rows = list(db.execute("SELECT conversation FROM trajectories WHERE id = ?", (trajectory_id,)))
            if not rows:
                raise KeyError(f"no trajectory {trajectory_id!r} in {self.path}")
            conv = Conversation.model_validate_json(rows[0]["conversation"])
            update = {"rewards": {**conv.rewards, **{k: float(v) for k, v in (rewards or {}).items()}},
                      "metadata": {**conv.metadata, **(metadata or {})}}
            conv = conv.model_copy(update=update)
            db.execute("UPDATE trajectories SET conversation = ? WHERE id = ?",
                       (conv.model_dump_json(exclude_none=True), trajectory_id))
        return conv

    # -- spans -----------------------------------------------------------------------------------

    def spans_add(self, rows: Sequence[tuple]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def spans(self, *, trace_id: str | None = None, session: str | None = None) -> list[dict[str, Any]]:
        where, params = _where({"trace_id": trace_id, "session": session})
        rows = self.query(f"SELECT * FROM spans {where} ORDER BY start_ns", params)
        return [{**dict(r), "attributes": json.loads(r["attributes"] or "{}")} for r in rows]


_COLUMNS = {"session", "run_id", "step", "agent", "model", "status", "trace_id", "id"}


def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    given = {k: v for k, v in filters.items() if v is not None}
    unknown = set(given) - _COLUMNS
    if unknown:
        raise ConfigError(f"cannot filter on {', '.join(sorted(unknown))}; choose from {', '.join(sorted(_COLUMNS))}")
    if not given:
        return "", []
    return "WHERE " + " AND ".join(f"{k} = ?" for k in given), list(given.values())
