"""The gateway's store: API keys and usage rows in SQLite (the default) or PostgreSQL.

``open_db(spec)`` takes a SQLite file path (created when missing; ``":memory:"`` for a
throw-away store) or a ``postgresql://`` URL. Both hold the same two tables, written
with the same SQL (``?`` placeholders, turned into ``%s`` for psycopg):

- ``gateway_keys``: one row per key; the secret is never stored, only its SHA-256;
- ``gateway_usage``: one row per finished request.

Every write is one transaction, committed before the server answers the request, so
a usage row is on disk (SQLite in WAL mode, or the PostgreSQL server) for every
answer a client received, whatever happens to the process afterwards. Several
server processes or machines share keys, budgets and usage through one PostgreSQL
database (several processes on one machine can also share one SQLite file).

PostgreSQL goes through psycopg 3 (``pip install 'agentladder[postgres]'``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentladder.data.io import sqlite_transaction
from agentladder.errors import ConfigError

try:  # an optional extra: PostgreSQL
    import psycopg
    from psycopg.rows import dict_row
except ImportError:  # pragma: no cover - exercised where the extra is missing
    psycopg = None  # type: ignore[assignment]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS gateway_keys (
        id TEXT PRIMARY KEY, name TEXT, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, team TEXT NOT NULL,
        models TEXT NOT NULL, rpm INTEGER, tpm INTEGER, token_budget BIGINT, tokens_used BIGINT NOT NULL DEFAULT 0,
        record INTEGER NOT NULL DEFAULT 0, admin INTEGER NOT NULL DEFAULT 0, guard TEXT,
        created DOUBLE PRECISION NOT NULL, revoked DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS gateway_usage (
        id TEXT PRIMARY KEY, request_id TEXT, ts DOUBLE PRECISION NOT NULL, day TEXT NOT NULL, key_id TEXT,
        team TEXT, model TEXT, endpoint TEXT NOT NULL, prompt_tokens BIGINT NOT NULL DEFAULT 0,
        completion_tokens BIGINT NOT NULL DEFAULT 0, latency DOUBLE PRECISION NOT NULL, status INTEGER NOT NULL,
        guard_checks INTEGER NOT NULL DEFAULT 0, guard_blocked INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS gateway_usage_key_ts ON gateway_usage (key_id, ts)",
    "CREATE INDEX IF NOT EXISTS gateway_usage_ts ON gateway_usage (ts)",
]


def is_postgres(spec: str) -> bool:
    return spec.startswith(("postgresql://", "postgres://"))


class GatewayDB:
    """One connection to the gateway's store, shared between threads behind a lock."""

    def __init__(self, spec: str):
        self.spec = spec
        self.postgres = is_postgres(spec)
        self._lock = threading.RLock()
        if self.postgres:
            if psycopg is None:
                raise ConfigError("--db postgresql://... needs psycopg 3: pip install 'agentladder[postgres]'")
            try:
                self._conn: Any = psycopg.connect(spec, autocommit=True, row_factory=dict_row)
            except psycopg.Error as err:
                raise ConfigError(f"cannot connect to {redact(spec)}: {str(err).strip().splitlines()[0]}") from None
        else:
            if spec != ":memory:":
                Path(spec).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(spec, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.row_factory = sqlite3.Row
            if spec != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")  # durable when the process dies
        with self.transaction() as tx:
            if self.postgres:  # two processes starting together must not both create the tables
                tx.execute("SELECT pg_advisory_xact_lock(7316)")
            for statement in SCHEMA:
                tx.execute(statement)

    def __repr__(self) -> str:
        return f"GatewayDB({redact(self.spec)!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One atomic transaction: every statement inside lands, or none does."""
        with self._lock:
            if self.postgres:
                with self._conn.transaction():
                    yield Transaction(self._conn, True)
            else:
                with sqlite_transaction(self._conn) as conn:
                    yield Transaction(conn, False)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return Transaction(self._conn, self.postgres).query(sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in its own transaction; the number of rows it changed."""
        with self.transaction() as tx:
            return tx.execute(sql, params)


class Transaction:
    """Statements inside :meth:`GatewayDB.transaction` (``?`` placeholders on both back ends)."""

    def __init__(self, conn: Any, postgres: bool):
        self.conn, self.postgres = conn, postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self.conn.execute(self._sql(sql), tuple(params))
        return cur.rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(self._sql(sql), tuple(params))
        return [dict(r) for r in cur.fetchall()]


def redact(spec: str) -> str:
    """A database spec with any password hidden (for messages and logs)."""
    if not is_postgres(spec) or "@" not in spec:
        return spec
    scheme, rest = spec.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"


def open_db(spec: str | Path) -> GatewayDB:
    """The gateway store at ``spec``: a SQLite file path, ``":memory:"`` or a ``postgresql://`` URL."""
    return GatewayDB(str(spec))


__all__ = ["GatewayDB", "Transaction", "is_postgres", "open_db", "redact"]
