"""A vector index of passages in the project's store, searched by meaning, by BM25, or both.

The passages, their embeddings (float32 blobs) and the embedder that made them live in two tables of
the runtime's SQLite store (:class:`~agentladder.agents.store.Store`, ``agentladder.db`` by default), so
an index survives the process and sits beside the traces and sessions. Search is exact inner product on
normalised vectors (cosine) by a ``faiss.IndexFlatIP`` built from the stored vectors when the index is
opened and kept in step with every add and delete. Why faiss and not sqlite-vec: sqlite-vec is a
loadable SQLite extension, and many Python builds (this project's CI image among them, and macOS's
system Python) compile ``sqlite3`` without extension loading; faiss installs from a wheel everywhere and
its other index types (HNSW, IVF) are there when a corpus outgrows exact search.

An index is tied to the embedder it was built with: the embedder's fingerprint (a hash of its
weights and configuration files) is stored with it, and opening the index with another embedder is
refused with a clear message unless ``rebuild=True``, which re-encodes every stored passage with the
new one. ``hybrid=True`` searches fuse the vector ranking with BM25 (``bm25s``) over the same passages
by reciprocal rank fusion (:mod:`agentladder.tasks.retrieval.rankers`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentladder.agents.store import Store
from agentladder.agents.tools import Tool
from agentladder.errors import ConfigError
from agentladder.tasks.retrieval.rankers import (
    BM25Ranker,
    embedder_fingerprint,
    embedder_path,
    encode,
    rrf,
)


@dataclass
class Hit:
    id: str
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)


def checked_passages(passages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Passages to add as dicts, each checked for a string ``id`` and ``text`` (the index's error otherwise)."""
    rows = [dict(p) for p in passages]
    for i, p in enumerate(rows):
        if not isinstance(p.get("id"), str) or not isinstance(p.get("text"), str):
            raise ConfigError(f"passage {i}: needs a string 'id' and a string 'text'")
    return rows


class VectorIndex:
    """Passages and their embeddings in the store, with exact cosine search (and BM25 beside it)."""

    def __init__(self, store: Store | str | os.PathLike | None = None, name: str = "default", *,
                 embedder: str | os.PathLike | None = None, rebuild: bool = False):
        try:
            import faiss
        except ImportError:
            raise ConfigError("the vector index needs faiss: pip install 'agentladder[retrieval]'") from None
        self._faiss = faiss
        self.store = store if isinstance(store, Store) else Store(store)
        self.name = name
        self._lock = threading.Lock()
        row = self.store.query("SELECT embedder, fingerprint, dim FROM vector_indexes WHERE name = ?", (name,))
        fingerprint = embedder_fingerprint(embedder) if (embedder is not None or not row) else None
        if not row:
            self.embedder = str(embedder_path(embedder))
            self._set_embedder(self.embedder, fingerprint, self._dim(self.embedder))
        elif fingerprint is not None and fingerprint != row[0]["fingerprint"]:
            if not rebuild:
                raise ConfigError(
                    f"index {name!r} was built with the embedder {row[0]['embedder']} and cannot be searched with "
                    f"{embedder}: its vectors are another model's; open it with rebuild=True to re-encode its "
                    "passages with the new embedder")
            self.embedder = str(embedder_path(embedder))
            self._reencode(fingerprint)
        else:
            self.embedder = row[0]["embedder"]
        self._load()

    # -- building ---------------------------------------------------------------------------------
    @staticmethod
    def _dim(embedder: str) -> int:
        return int(encode(embedder, ["dimension probe"]).shape[1])

    def _set_embedder(self, embedder: str, fingerprint: str, dim: int) -> None:
        with self.store.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO vector_indexes (name, embedder, fingerprint, dim) VALUES (?, ?, ?, ?)",
                         (self.name, embedder, fingerprint, dim))

    def _reencode(self, fingerprint: str) -> None:
        rows = self.store.query("SELECT id, text FROM vector_passages WHERE index_name = ?", (self.name,))
        vectors = encode(self.embedder, [r["text"] for r in rows]) if rows else None
        with self.store.transaction() as conn:
            for i, r in enumerate(rows):
                conn.execute("UPDATE vector_passages SET vector = ? WHERE index_name = ? AND id = ?",
                             (vectors[i].tobytes(), self.name, r["id"]))
        self._set_embedder(self.embedder, fingerprint, self._dim(self.embedder))

    def _load(self) -> None:
        """The faiss index, ids, texts and BM25 from the stored rows."""
        rows = self.store.query("SELECT id, text, metadata, vector FROM vector_passages WHERE index_name = ? "
                                "ORDER BY rowid", (self.name,))
        dim = self.store.query("SELECT dim FROM vector_indexes WHERE name = ?", (self.name,))[0]["dim"]
        self._ids = [r["id"] for r in rows]
        self._texts = {r["id"]: r["text"] for r in rows}
        self._meta = {r["id"]: json.loads(r["metadata"]) if r["metadata"] else {} for r in rows}
        self._faiss_index = self._faiss.IndexFlatIP(dim)
        if rows:
            self._faiss_index.add(np.stack([np.frombuffer(r["vector"], dtype=np.float32) for r in rows]))
        self._bm25: BM25Ranker | None = None

    def add(self, passages: Iterable[Mapping[str, Any]]) -> int:
        """Add or replace passages ``{"id", "text", "metadata"?}``; returns how many."""
        rows = checked_passages(passages)
        if not rows:
            return 0
        vectors = encode(self.embedder, [p["text"] for p in rows])
        with self._lock, self.store.transaction() as conn:
            for p, v in zip(rows, vectors, strict=True):
                conn.execute("INSERT OR REPLACE INTO vector_passages (index_name, id, text, metadata, vector) "
                             "VALUES (?, ?, ?, ?, ?)", (self.name, p["id"], p["text"],
                                                        json.dumps(p.get("metadata") or {}), v.tobytes()))
        self._load()
        return len(rows)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove passages by id; returns how many were there."""
        ids = list(ids)
        with self._lock, self.store.transaction() as conn:
            gone = sum(conn.execute("DELETE FROM vector_passages WHERE index_name = ? AND id = ?",
                                    (self.name, pid)).rowcount for pid in ids)
        self._load()
        return gone

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, pid: str) -> Hit | None:
        """The stored passage ``pid`` (score 1.0), ``None`` when there is none."""
        if pid not in self._texts:
            return None
        return Hit(pid, self._texts[pid], 1.0, self._meta[pid])

    def passages(self) -> dict[str, str]:
        """Every stored passage's text, by id, in the order they were added."""
        return {pid: self._texts[pid] for pid in self._ids}

    # -- searching --------------------------------------------------------------------------------
    def _dense(self, query: str, depth: int) -> list[tuple[str, float]]:
        q = encode(self.embedder, [query])
        scores, idx = self._faiss_index.search(q, min(depth, len(self._ids)))
        return [(self._ids[j], float(s)) for s, j in zip(scores[0], idx[0], strict=True) if j >= 0]

    def search(self, query: str, k: int = 5, *, hybrid: bool = False, depth: int = 100) -> list[Hit]:
        """The ``k`` passages nearest ``query`` (cosine); ``hybrid`` fuses that ranking with BM25's."""
        if not self._ids:
            return []
        if not hybrid:
            ranked = self._dense(query, k)
        else:
            if self._bm25 is None:
                self._bm25 = BM25Ranker()
                self._bm25.fit(self._ids, [self._texts[i] for i in self._ids])
            ranked = rrf([self._dense(query, depth), self._bm25.rank([query], depth)[0]], k)
        return [Hit(pid, self._texts[pid], score, self._meta[pid]) for pid, score in ranked]


def retriever_tool(index: VectorIndex | Any, k: int = 5, *, hybrid: bool = False,
                   name: str = "search_knowledge_base") -> Tool:
    """A tool that searches ``index`` and answers with the ``k`` best passages as ``[id] text`` lines.

    ``index`` is a :class:`VectorIndex`, a :class:`~agentladder.agents.pgindex.PgVectorIndex`, or anything with
    their ``search(query, k, hybrid=...)`` returning :class:`Hit` objects."""

    def search_knowledge_base(query: str) -> str:
        """Search the knowledge base; returns the most relevant passages, each with its id to cite.

        Args:
            query: What to look for, in plain words.
        """
        hits = index.search(query, k, hybrid=hybrid)
        return "\n".join(f"[{h.id}] {h.text}" for h in hits) or "no passages found"

    return Tool(search_knowledge_base, name=name)


__all__ = ["Hit", "VectorIndex", "checked_passages", "retriever_tool"]
