"""Long-term memory: facts kept per user (and agent) across sessions, searched by meaning, with history.

Each namespace (a user, or a user and an agent) is its own :class:`~agentladder.agents.index.VectorIndex`
in the project's store, so one user's search can never return another's fact: isolation is by
construction, not by a filter that a bug could drop. Every change (``add``, ``update``, ``delete``) is
a row of the ``memory_history`` table with the text before and after, so an updated fact's old value
is still known and can be audited. A new :class:`Memory` on the same store file (a later session, in
another process) sees what earlier sessions stored.

:meth:`Memory.remember` is how a conversation's statements land: the statement replaces the user's
nearest fact when their cosine is at least ``threshold`` (the same fact restated or changed: "I moved
to the Elm Street pharmacy" after "I use the Main Street pharmacy") and is added as a new fact
otherwise. The threshold is chosen on the memory benchmark's validation split
(:mod:`agentladder.agents.memory_bench`).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from agentladder.agents.index import Hit, VectorIndex
from agentladder.agents.store import Store
from agentladder.errors import ConfigError

DEFAULT_THRESHOLD = 0.45
"""Cosine above which :meth:`Memory.remember` treats a statement as a change of an existing fact: the best of
0.45, 0.65 and 0.85 on the memory benchmark's validation split (6 users, the packaged MiniLM; docs/retrieval.md)."""

HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, fact TEXT NOT NULL, event TEXT NOT NULL,
    old TEXT, new TEXT, ts REAL NOT NULL);
"""


@dataclass
class Change:
    fact: str
    event: str
    """``add``, ``update`` or ``delete``."""
    old: str | None
    new: str | None
    ts: float


class Memory:
    """Facts per namespace (``user``, optionally ``agent``), in the project's store."""

    def __init__(self, store: Store | str | os.PathLike | None = None, *, embedder: str | os.PathLike | None = None,
                 threshold: float = DEFAULT_THRESHOLD):
        self.store = store if isinstance(store, Store) else Store(store)
        self.embedder = embedder
        self.threshold = threshold
        with self.store.transaction() as conn:
            for statement in HISTORY_SCHEMA.strip().split(";"):
                if statement.strip():
                    conn.execute(statement)
        self._indexes: dict[str, VectorIndex] = {}

    @staticmethod
    def namespace(user: str, agent: str | None = None) -> str:
        """``memory:USER`` or ``memory:USER/AGENT``."""
        for name, value in (("user", user), ("agent", agent)):
            if value is not None and (not isinstance(value, str) or not value or "/" in value):
                raise ConfigError(f"{name} must be a non-empty string without '/', not {value!r}")
        return f"memory:{user}" + (f"/{agent}" if agent else "")

    def _index(self, user: str, agent: str | None) -> VectorIndex:
        ns = self.namespace(user, agent)
        if ns not in self._indexes:
            self._indexes[ns] = VectorIndex(self.store, ns, embedder=self.embedder)
        return self._indexes[ns]

    def _log(self, ns: str, fact: str, event: str, old: str | None, new: str | None) -> None:
        with self.store.transaction() as conn:
            conn.execute("INSERT INTO memory_history (namespace, fact, event, old, new, ts) VALUES (?, ?, ?, ?, ?, ?)",
                         (ns, fact, event, old, new, time.time()))

    def _existing(self, index: VectorIndex, fact_id: str, user: str, agent: str | None) -> Hit:
        hit = index.get(fact_id)
        if hit is None:
            raise ConfigError(f"no fact {fact_id!r} in {self.namespace(user, agent)}")
        return hit

    # -- changes ----------------------------------------------------------------------------------
    def add(self, text: str, *, user: str, agent: str | None = None, metadata: dict[str, Any] | None = None) -> str:
        """Store a new fact; returns its id."""
        index = self._index(user, agent)
        fact_id = f"fact-{uuid.uuid4().hex[:12]}"
        index.add([{"id": fact_id, "text": text, "metadata": metadata or {}}])
        self._log(index.name, fact_id, "add", None, text)
        return fact_id

    def update(self, fact_id: str, text: str, *, user: str, agent: str | None = None) -> None:
        """Replace a fact's text; the old text stays in the history."""
        index = self._index(user, agent)
        old = self._existing(index, fact_id, user, agent)
        index.add([{"id": fact_id, "text": text, "metadata": old.metadata}])
        self._log(index.name, fact_id, "update", old.text, text)

    def delete(self, fact_id: str, *, user: str, agent: str | None = None) -> None:
        """Forget a fact; the history keeps that it was there."""
        index = self._index(user, agent)
        old = self._existing(index, fact_id, user, agent)
        index.delete([fact_id])
        self._log(index.name, fact_id, "delete", old.text, None)

    def remember(self, text: str, *, user: str, agent: str | None = None) -> tuple[str, str]:
        """Store a statement: an update of the nearest fact when it is that close (``threshold``), else a new fact.

        Returns ``(event, fact id)`` with ``event`` ``add`` or ``update``.
        """
        index = self._index(user, agent)
        nearest = index.search(text, k=1)
        if nearest and nearest[0].score >= self.threshold:
            self.update(nearest[0].id, text, user=user, agent=agent)
            return "update", nearest[0].id
        return "add", self.add(text, user=user, agent=agent)

    # -- reading ----------------------------------------------------------------------------------
    def search(self, query: str, *, user: str, agent: str | None = None, k: int = 5) -> list[Hit]:
        """The namespace's ``k`` facts nearest ``query`` (only that user's, and agent's when given)."""
        return self._index(user, agent).search(query, k)

    def facts(self, *, user: str, agent: str | None = None) -> dict[str, str]:
        """Every current fact of the namespace, by id."""
        return self._index(user, agent).passages()

    def history(self, *, user: str, agent: str | None = None, fact: str | None = None) -> list[Change]:
        """The namespace's changes, oldest first (one fact's with ``fact``)."""
        ns = self.namespace(user, agent)
        sql, params = "SELECT * FROM memory_history WHERE namespace = ?", [ns]
        if fact:
            sql, params = sql + " AND fact = ?", [*params, fact]
        rows = self.store.query(sql + " ORDER BY seq", params)
        return [Change(r["fact"], r["event"], r["old"], r["new"], r["ts"]) for r in rows]


__all__ = ["DEFAULT_THRESHOLD", "Change", "Memory"]
