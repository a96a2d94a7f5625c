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

:meth:`Memory.extract` (``aextract`` in async code) asks a model for the facts of a conversation worth
keeping, as ``{"facts": ["...", ...]}``; the reply is validated (pydantic: a list of at most
``MAX_FACTS`` non-empty sentences) and each fact goes through :meth:`remember`, so a restated or changed
fact updates the stored one (its old text stays in the history) instead of piling up. A reply that is not
such an object changes nothing and is reported in :attr:`Extraction.error`, never raised: a model's bad
answer must not lose the conversation it was asked about.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from agentladder.agents._sync import run_sync
from agentladder.agents.index import Hit, VectorIndex
from agentladder.agents.store import Store
from agentladder.data.schema import Message
from agentladder.errors import ConfigError
from agentladder.models.providers import Provider, chat_provider
from agentladder.tasks.parsing import extract_json_object

DEFAULT_THRESHOLD = 0.45
"""Cosine above which :meth:`Memory.remember` treats a statement as a change of an existing fact: the best of
0.45, 0.55, 0.65, 0.75 and 0.85 on the memory benchmark's validation split (30 users, the packaged MiniLM;
docs/retrieval.md)."""

HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, fact TEXT NOT NULL, event TEXT NOT NULL,
    old TEXT, new TEXT, ts REAL NOT NULL);
"""


MAX_FACTS = 20
"""At most this many facts are taken from one conversation (a longer list is a bad reply)."""

EXTRACT_SYSTEM = (
    "You keep an assistant's long-term memory of a user. Read the conversation and list the facts about "
    "the user worth remembering in later conversations: who they are, their circumstances, preferences, "
    "medicines, allergies, plans and anything they ask to be remembered. Write each fact as one short "
    "sentence in the user's own first person (\"I am allergic to penicillin.\"); a changed fact is written "
    "as it is now. Leave out small talk, questions and what the assistant said. Reply with only a JSON "
    'object: {"facts": ["...", "..."]}, and {"facts": []} when there is nothing to keep.')

Fact = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ExtractedFacts(BaseModel):
    """The reply :meth:`Memory.extract` asks the model for."""

    model_config = ConfigDict(extra="ignore")
    facts: list[Fact] = []


@dataclass
class Extraction:
    """What one :meth:`Memory.extract` did."""

    changes: list[tuple[str, str, str]] = field(default_factory=list)
    """``(event, fact id, text)`` per fact kept: ``event`` is ``add`` or ``update``."""
    error: str | None = None
    """Why the model's reply was not used (nothing was stored), ``None`` when it was."""
    reply: str = ""
    """The model's reply, as it came."""


def read_facts(reply: str) -> list[str]:
    """The facts of an extraction reply; ``ValueError`` saying what is wrong with it."""
    obj = extract_json_object(reply)
    if obj is None:
        raise ValueError("no JSON object in the reply")
    try:
        facts = ExtractedFacts.model_validate(obj).facts
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "reply"
        raise ValueError(f"{where}: {first['msg']}") from None
    if len(facts) > MAX_FACTS:
        raise ValueError(f"facts: {len(facts)} facts, more than {MAX_FACTS}")
    return list(dict.fromkeys(facts))


def transcript(messages: Sequence[Message | dict]) -> str:
    """The user and assistant turns of a conversation as ``role: text`` lines (system and tool turns left out)."""
    lines = []
    for m in messages:
        m = m if isinstance(m, Message) else Message.model_validate(m)
        if m.role in ("user", "assistant") and m.content:
            lines.append(f"{m.role}: {m.content}")
    return "\n".join(lines)


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
        return self._remember(text, user, agent, set())

    def _remember(self, text: str, user: str, agent: str | None, keep: set[str]) -> tuple[str, str]:
        """:meth:`remember`, never replacing a fact in ``keep`` (those one extraction just stored)."""
        index = self._index(user, agent)
        nearest = [h for h in index.search(text, k=len(keep) + 1) if h.id not in keep][:1]
        if nearest and nearest[0].score >= self.threshold:
            self.update(nearest[0].id, text, user=user, agent=agent)
            return "update", nearest[0].id
        return "add", self.add(text, user=user, agent=agent)

    async def aextract(self, messages: Sequence[Message | dict], provider: Provider | str | Any, *, user: str,
                       agent: str | None = None, max_new_tokens: int = 256) -> Extraction:
        """Ask ``provider`` for the facts of ``messages`` worth keeping and :meth:`remember` each one.

        A reply that is not ``{"facts": [...]}`` (or a model that cannot be reached) stores nothing and is
        reported in the result's ``error``. See the module docstring.
        """
        self.namespace(user, agent)
        text = transcript(messages)
        if not text:
            return Extraction()
        prompt = [Message(role="system", content=EXTRACT_SYSTEM), Message(role="user", content=text)]
        try:
            response = await chat_provider(provider).achat(prompt, max_new_tokens=max_new_tokens,
                                                           temperature=0.0, json_output=True)
        except Exception as err:  # a model that cannot answer loses no stored fact and breaks no run
            return Extraction(error=f"the model could not be asked: {type(err).__name__}: {err}")
        reply = response.message.content or ""
        try:
            facts = read_facts(reply)
        except ValueError as err:
            return Extraction(error=str(err), reply=reply)
        changes: list[tuple[str, str, str]] = []
        for fact in facts:  # two facts of one reply are two facts: neither replaces the other
            event, fact_id = self._remember(fact, user, agent, {c[1] for c in changes})
            changes.append((event, fact_id, fact))
        return Extraction(changes, None, reply)

    def extract(self, messages: Sequence[Message | dict], provider: Provider | str | Any, *, user: str,
                agent: str | None = None, max_new_tokens: int = 256) -> Extraction:
        """:meth:`aextract` from sync code."""
        return run_sync(self.aextract(messages, provider, user=user, agent=agent, max_new_tokens=max_new_tokens))

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


__all__ = ["DEFAULT_THRESHOLD", "EXTRACT_SYSTEM", "MAX_FACTS", "Change", "Extraction", "ExtractedFacts", "Memory",
           "read_facts", "transcript"]
