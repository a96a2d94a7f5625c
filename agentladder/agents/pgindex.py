"""The vector index in PostgreSQL with pgvector: the production counterpart of :class:`VectorIndex`.

Same public API as :class:`~agentladder.agents.index.VectorIndex` (``add``, ``delete``, ``get``,
``passages``, ``search`` with ``hybrid``, ``len``; the refusal of another embedder and ``rebuild``), so
code written against the SQLite index runs against a server shared by several processes and hosts.
Two tables hold every index: ``agentladder_vector_indexes`` (the embedder, its fingerprint and the
vectors' dimension per index) and ``agentladder_vector_passages`` (id, text, metadata as ``jsonb`` and
the embedding as a pgvector ``vector``). Search is exact cosine distance (``<=>``) computed by the
server, so the ranking is the SQLite index's; BM25 for ``hybrid=True`` runs in this process on the
index's passages (``bm25s``, the same ranker and fusion as the SQLite index) and is rebuilt after a
change. The server needs the ``vector`` extension (``CREATE EXTENSION vector``, done here when the
connecting role may); ``setup.sh --dev`` builds it for Debian's PostgreSQL.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from agentladder.agents.index import Hit, checked_passages
from agentladder.errors import ConfigError
from agentladder.tasks.retrieval.rankers import (
    BM25Ranker,
    embedder_fingerprint,
    embedder_path,
    encode,
    rrf,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS agentladder_vector_indexes (
    name TEXT PRIMARY KEY, embedder TEXT NOT NULL, fingerprint TEXT NOT NULL, dim INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS agentladder_vector_passages (
    index_name TEXT NOT NULL REFERENCES agentladder_vector_indexes (name) ON DELETE CASCADE,
    id TEXT NOT NULL, seq BIGSERIAL, text TEXT NOT NULL, metadata JSONB NOT NULL DEFAULT '{}',
    embedding vector NOT NULL, PRIMARY KEY (index_name, id))
"""


def _literal(vector: np.ndarray) -> str:
    """A pgvector text literal, ``[0.1,0.2,...]``."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError("the PostgreSQL index needs psycopg: pip install 'agentladder[postgres]'") from None
    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as err:
        raise ConfigError(f"cannot connect to PostgreSQL at {url}: {str(err).strip()}") from None


class PgVectorIndex:
    """Passages and their embeddings in PostgreSQL (pgvector), exact cosine search, BM25 beside it.

    ``conninfo`` is a ``postgresql://`` URL or an open psycopg connection (used in autocommit mode).
    """

    def __init__(self, conninfo: str | Any, name: str = "default", *,
                 embedder: str | os.PathLike | None = None, rebuild: bool = False):
        self.conn = _connect(conninfo) if isinstance(conninfo, str) else conninfo
        self.name = name
        self._lock = threading.Lock()
        self._bm25: BM25Ranker | None = None
        self._ensure_schema()
        row = self._rows("SELECT embedder, fingerprint, dim FROM agentladder_vector_indexes WHERE name = %s",
                         (name,))
        fingerprint = embedder_fingerprint(embedder) if (embedder is not None or not row) else None
        if not row:
            self.embedder = str(embedder_path(embedder))
            self._set_embedder(fingerprint)
        elif fingerprint is not None and fingerprint != row[0][1]:
            if not rebuild:
                raise ConfigError(
                    f"index {name!r} was built with the embedder {row[0][0]} and cannot be searched with "
                    f"{embedder}: its vectors are another model's; open it with rebuild=True to re-encode its "
                    "passages with the new embedder")
            self.embedder = str(embedder_path(embedder))
            self._reencode(fingerprint)
        else:
            self.embedder = row[0][0]

    # -- plumbing ---------------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        import psycopg

        with self._lock:
            try:
                with self.conn.transaction():
                    self.conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as err:
                raise ConfigError(
                    "PostgreSQL has no pgvector extension (CREATE EXTENSION vector failed: "
                    f"{str(err).strip()}); install it (setup.sh --dev builds it) or ask an administrator") from None
            with self.conn.transaction():
                for statement in SCHEMA.strip().split(";"):
                    if statement.strip():
                        self.conn.execute(statement)

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def _set_embedder(self, fingerprint: str) -> None:
        dim = int(encode(self.embedder, ["dimension probe"]).shape[1])
        with self._lock, self.conn.transaction():
            self.conn.execute(
                "INSERT INTO agentladder_vector_indexes (name, embedder, fingerprint, dim) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET embedder = EXCLUDED.embedder, "
                "fingerprint = EXCLUDED.fingerprint, dim = EXCLUDED.dim",
                (self.name, self.embedder, fingerprint, dim))

    def _reencode(self, fingerprint: str) -> None:
        rows = self._rows("SELECT id, text FROM agentladder_vector_passages WHERE index_name = %s", (self.name,))
        vectors = encode(self.embedder, [r[1] for r in rows]) if rows else []
        self._set_embedder(fingerprint)
        with self._lock, self.conn.transaction():
            for (pid, _), v in zip(rows, vectors, strict=True):
                self.conn.execute("UPDATE agentladder_vector_passages SET embedding = %s::vector "
                                  "WHERE index_name = %s AND id = %s", (_literal(v), self.name, pid))

    # -- changes ----------------------------------------------------------------------------------
    def add(self, passages: Iterable[Mapping[str, Any]]) -> int:
        """Add or replace passages ``{"id", "text", "metadata"?}``; returns how many."""
        rows = checked_passages(passages)
        if not rows:
            return 0
        vectors = encode(self.embedder, [p["text"] for p in rows])
        with self._lock, self.conn.transaction():
            for p, v in zip(rows, vectors, strict=True):
                self.conn.execute(
                    "INSERT INTO agentladder_vector_passages (index_name, id, text, metadata, embedding) "
                    "VALUES (%s, %s, %s, %s::jsonb, %s::vector) ON CONFLICT (index_name, id) DO UPDATE SET "
                    "text = EXCLUDED.text, metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding",
                    (self.name, p["id"], p["text"], json.dumps(p.get("metadata") or {}), _literal(v)))
        self._bm25 = None
        return len(rows)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove passages by id; returns how many were there."""
        ids = list(ids)
        with self._lock, self.conn.transaction():
            gone = self.conn.execute("DELETE FROM agentladder_vector_passages WHERE index_name = %s AND id = ANY(%s)",
                                     (self.name, ids)).rowcount
        self._bm25 = None
        return gone

    # -- reading ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._rows("SELECT count(*) FROM agentladder_vector_passages WHERE index_name = %s",
                          (self.name,))[0][0]

    def get(self, pid: str) -> Hit | None:
        """The stored passage ``pid`` (score 1.0), ``None`` when there is none."""
        row = self._rows("SELECT text, metadata FROM agentladder_vector_passages WHERE index_name = %s AND id = %s",
                         (self.name, pid))
        return Hit(pid, row[0][0], 1.0, row[0][1] or {}) if row else None

    def passages(self) -> dict[str, str]:
        """Every stored passage's text, by id, in the order they were first added."""
        rows = self._rows("SELECT id, text FROM agentladder_vector_passages WHERE index_name = %s ORDER BY seq",
                          (self.name,))
        return {pid: text for pid, text in rows}

    def _dense(self, query: str, depth: int) -> list[tuple[str, float]]:
        q = _literal(encode(self.embedder, [query])[0])
        rows = self._rows("SELECT id, 1 - (embedding <=> %s::vector) AS score FROM agentladder_vector_passages "
                          "WHERE index_name = %s ORDER BY embedding <=> %s::vector, seq LIMIT %s",
                          (q, self.name, q, depth))
        return [(pid, float(score)) for pid, score in rows]

    def search(self, query: str, k: int = 5, *, hybrid: bool = False, depth: int = 100) -> list[Hit]:
        """The ``k`` passages nearest ``query`` (cosine); ``hybrid`` fuses that ranking with BM25's."""
        if not hybrid:
            ranked = self._dense(query, k)
        else:
            texts = self.passages()
            if not texts:
                return []
            if self._bm25 is None:
                self._bm25 = BM25Ranker()
                self._bm25.fit(list(texts), list(texts.values()))
            ranked = rrf([self._dense(query, depth), self._bm25.rank([query], depth)[0]], k)
        if not ranked:
            return []
        rows = self._rows("SELECT id, text, metadata FROM agentladder_vector_passages WHERE index_name = %s "
                          "AND id = ANY(%s)", (self.name, [pid for pid, _ in ranked]))
        found = {pid: (text, meta or {}) for pid, text, meta in rows}
        return [Hit(pid, found[pid][0], score, found[pid][1]) for pid, score in ranked if pid in found]

    def close(self) -> None:
        """Close the connection (when this index opened it from a URL)."""
        self.conn.close()


__all__ = ["PgVectorIndex"]
