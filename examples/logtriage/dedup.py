"""A deduplication cache in three tiers, in front of a triage model, and the choice of its thresholds.

An event that was triaged before should not cost a model call again. Each tier is cheaper and stricter
than the next:

1. **exact**: a hash of the normalised event (lower-cased, whitespace collapsed, and the fields that change
   from one copy of an event to the next masked: timestamps, dates, IP addresses, UUIDs, process ids, and
   tokens that mix letters and digits, such as host names and request ids; a number with a short unit,
   ``71d`` or ``886ms``, is a measurement and stays, split from its unit);
2. **overlap**: the Jaccard similarity of the event's token set with a cached event's, above a threshold;
   the tokens are masked either as for the exact tier (``volatile``) or with every number masked too
   (``numbers``);
3. **semantic**: the cosine of the event's MiniLM embedding (of its normalised text) with a cached
   event's, above a threshold.

With the **number guard** on, the overlap and semantic tiers only match two events when every number of
one (after the volatile fields are masked: the measurements, counts, status codes) appears in the other:
a copy that adds a repeat count still matches its original, an error rate of 0.9 % never matches one of
6.6 %.

A hit answers with the cached event's label; a miss goes to the model, and its answer is cached.

:func:`choose_thresholds` picks the overlap masking and both thresholds on a labelled validation stream,
without any model: for each event it finds the most similar earlier event by each tier and asks whether
their true labels agree. A tier's threshold is the lowest of its grid whose hits agree at least
``min_precision`` of the time (at least ``min_hits`` of them); a tier with no such threshold is off.
Masking the numbers merges events whose magnitudes differ (a 0.9 % and a 6.6 % error rate), and the
magnitudes decide the priority, so the validation stream decides which masking, and whether the number
guard, is safe.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VOLATILE = [
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:z|[+-]\d{2}:?\d{2})?", re.I), " <ts> "),
    (re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* +\d{1,2}\b", re.I), " <date> "),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), " <date> "),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\b"), " <time> "),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), " <ip> "),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), " <uuid> "),
    (re.compile(r"\[\d+\]"), "[<pid>]"),
    (re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([a-z]{1,3})(?![a-z0-9])", re.I), r"\1 \2"),  # 71d, 886ms: a measurement
    (re.compile(r"(?<![a-z0-9])[a-z0-9]+(?:-[a-z0-9]+)*(?![a-z0-9])", re.I),
     lambda m: " <id> " if re.search(r"[a-z]", m.group(0), re.I) and re.search(r"\d", m.group(0)) else m.group(0)),
]
"""Fields that differ between copies of one event: (pattern, replacement), applied in order."""
NUMBER = re.compile(r"^\d+(?:[.,]\d+)*$")
TOKEN = re.compile(r"<[a-z]+>|[a-z0-9]+(?:[.,][0-9]+)*", re.I)
MASKS = ("volatile", "numbers")
TIERS = ("exact", "overlap", "semantic")
GRID = tuple(round(0.5 + 0.01 * i, 2) for i in range(51))
"""Thresholds tried for the overlap and semantic tiers: 0.50, 0.51, ..., 1.00."""


def normalise(text: str) -> str:
    """The event with its volatile fields masked, lower-cased, whitespace collapsed: the exact tier's key."""
    out = text
    for pattern, repl in VOLATILE:
        out = pattern.sub(repl, out)
    return " ".join(out.lower().split())


def tokens(text: str, mask: str = "numbers") -> frozenset[str]:
    """The set of tokens of the normalised event; with ``mask="numbers"`` every number reads ``<num>``."""
    if mask not in MASKS:
        raise ValueError(f"mask {mask!r}: choose one of {', '.join(MASKS)}")
    found = TOKEN.findall(normalise(text))
    if mask == "numbers":
        found = ["<num>" if NUMBER.match(t) else t for t in found]
    return frozenset(found)


def numbers(text: str) -> frozenset[str]:
    """The numbers of the normalised event (its volatile fields masked): what the number guard compares."""
    return frozenset(t for t in TOKEN.findall(normalise(text)) if NUMBER.match(t))


def compatible(a: frozenset[str], b: frozenset[str]) -> bool:
    """The number guard: every number of one event appears in the other."""
    return a <= b or b <= a


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b| (1.0 for two empty sets)."""
    union = len(a | b)
    return 1.0 if union == 0 else len(a & b) / union


def event_key(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()


Embed = Callable[[Sequence[str]], np.ndarray]
"""Texts -> ``(N, D)`` L2-normalised embeddings."""


def minilm_embedder(batch_size: int = 64) -> Embed:
    """The packaged all-MiniLM-L6-v2 (:func:`agentladder.models.embedding.embed`) as an :data:`Embed`."""
    from agentladder.models.embedding import embed

    return lambda texts: embed(list(texts), batch_size=batch_size).numpy()


@dataclass
class Thresholds:
    """The cache's settings: the overlap tier's masking and each tier's threshold (``None``: tier off)."""

    mask: str = "numbers"
    overlap: float | None = 0.9
    semantic: float | None = 0.95
    exact: bool = True
    guard: bool = True
    """The number guard on the overlap and semantic tiers (see the module docstring)."""
    chosen: dict[str, Any] = field(default_factory=dict)
    """How they were chosen (validation rows, configurations tried, precision and hits per tier)."""


@dataclass
class Hit:
    tier: str
    """``exact``, ``overlap``, ``semantic`` or ``miss``."""
    label: str | None
    similarity: float | None = None
    matched: int | None = None
    """The index of the cached event that answered."""


class DedupCache:
    """Events answered so far, looked up by the three tiers (see the module docstring)."""

    def __init__(self, thresholds: Thresholds, embed: Embed | None = None):
        self.thresholds = thresholds
        self.embed = embed
        self.labels: list[str] = []
        self.texts: list[str] = []
        self._exact: dict[str, int] = {}
        self._tokens: list[frozenset[str]] = []
        self._numbers: list[frozenset[str]] = []
        self._vectors: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.labels)

    def vector(self, text: str) -> np.ndarray:
        """The embedding of the normalised event (the semantic tier's and the few-shot retrieval's)."""
        if self.embed is None:
            raise ValueError("the semantic tier needs an embedder")
        return np.asarray(self.embed([normalise(text)])[0], dtype=np.float32)

    def lookup(self, text: str, vector: Callable[[], np.ndarray] | None = None) -> Hit:
        """The first tier that answers ``text``, or a miss. ``vector`` (a function giving the event's embedding,
        so a caller can share it) is called only when the semantic tier is reached."""
        th = self.thresholds
        if th.exact and (i := self._exact.get(event_key(text))) is not None:
            return Hit("exact", self.labels[i], 1.0, i)
        allowed = self._allowed(text)
        if th.overlap is not None and self._tokens:
            own = tokens(text, th.mask)
            sims = np.array([jaccard(own, other) for other in self._tokens]) * allowed
            best = int(np.argmax(sims))
            if sims[best] >= th.overlap:
                return Hit("overlap", self.labels[best], sims[best], best)
        if th.semantic is not None and self._vectors:
            vec = self.vector(text) if vector is None else vector()
            sims = np.where(allowed > 0, np.stack(self._vectors) @ vec, -1.0)
            best = int(np.argmax(sims))
            if sims[best] >= th.semantic:
                return Hit("semantic", self.labels[best], float(sims[best]), best)
        return Hit("miss", None)

    def _allowed(self, text: str) -> np.ndarray:
        """1 for each cached event the number guard lets ``text`` match (all of them with the guard off)."""
        if not self.thresholds.guard:
            return np.ones(len(self.labels))
        own = numbers(text)
        return np.array([compatible(own, other) for other in self._numbers], dtype=float)

    def add(self, text: str, label: str, vector: np.ndarray | None = None) -> None:
        """Cache ``label`` as the answer to ``text``."""
        self._exact.setdefault(event_key(text), len(self.labels))
        self._tokens.append(tokens(text, self.thresholds.mask))
        self._numbers.append(numbers(text))
        if self.thresholds.semantic is not None:
            self._vectors.append(self.vector(text) if vector is None else vector)
        self.labels.append(label)
        self.texts.append(text)


# -- choosing the thresholds on validation --------------------------------------------------------
def _best_earlier(sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a square similarity matrix: each row's most similar earlier row and that similarity (-1 for row 0)."""
    n = len(sims)
    best_sim, best_idx = np.full(n, -1.0), np.full(n, -1)
    for i in range(1, n):
        j = int(np.argmax(sims[i, :i]))
        best_sim[i], best_idx[i] = sims[i, j], j
    return best_sim, best_idx


def _pick(sim: np.ndarray, agree: np.ndarray, pool: np.ndarray, min_precision: float,
          min_hits: int) -> tuple[float | None, dict[str, Any]]:
    """The lowest threshold of :data:`GRID` whose hits among ``pool`` agree at least ``min_precision``."""
    for t in GRID:
        hit = pool & (sim >= t)
        n = int(hit.sum())
        if n >= min_hits and agree[hit].mean() >= min_precision:
            return t, {"threshold": t, "hits": n, "precision": float(agree[hit].mean())}
    return None, {"threshold": None, "hits": 0, "precision": None}


def choose_thresholds(texts: Sequence[str], labels: Sequence[str], embed: Embed | None, *,
                      min_precision: float = 0.95, min_hits: int = 5) -> Thresholds:
    """The cache's settings chosen on a labelled validation stream (see the module docstring).

    Tried: the number guard off and on x the two overlap maskings x :data:`GRID` for the overlap tier, then
    :data:`GRID` for the semantic tier (under the same guard) on the events neither earlier tier answers. The
    setting with the most hits of both tiers wins (ties: the guard on, then the ``volatile`` masking)."""
    labels_arr = np.asarray(labels)
    n = len(texts)
    first: dict[str, int] = {}
    exact = np.zeros(n, dtype=bool)
    exact_agree = []
    for i, k in enumerate(event_key(t) for t in texts):
        if k in first:
            exact[i] = True
            exact_agree.append(labels_arr[first[k]] == labels_arr[i])
        else:
            first[k] = i
    nums = [numbers(t) for t in texts]
    guard_ok = np.array([[compatible(a, b) for b in nums] for a in nums], dtype=float)
    vectors = None if embed is None else np.asarray(embed([normalise(t) for t in texts]), dtype=np.float32)
    cosines = None if vectors is None else vectors @ vectors.T
    chosen: dict[str, Any] = {"rows": n, "min_precision": min_precision, "min_hits": min_hits,
                              "exact": {"hits": int(exact.sum()),
                                        "precision": float(np.mean(exact_agree)) if exact_agree else None},
                              "candidates": []}
    best: tuple[tuple, Thresholds] | None = None
    for guard in (True, False):
        allowed = guard_ok if guard else np.ones((n, n))
        for mask in MASKS:
            sets = [tokens(t, mask) for t in texts]
            jac = np.array([[jaccard(a, b) for b in sets] for a in sets])
            overlap, o_info, o_hit = _tier(jac * allowed, labels_arr, ~exact, min_precision, min_hits)
            semantic, s_info = None, {"threshold": None, "hits": 0, "precision": None}
            if cosines is not None:
                semantic, s_info, _ = _tier(np.where(allowed > 0, cosines, -1.0), labels_arr, ~exact & ~o_hit,
                                            min_precision, min_hits)
            chosen["candidates"].append({"guard": guard, "mask": mask, "overlap": o_info, "semantic": s_info})
            rank = (o_info["hits"] + s_info["hits"], guard, mask == "volatile")
            if best is None or rank > best[0]:
                best = (rank, Thresholds(mask=mask, overlap=overlap, semantic=semantic, guard=guard))
    assert best is not None
    result = best[1]
    chosen["configurations_tried"] = 2 * len(MASKS) * len(GRID) * (2 if embed is not None else 1)
    result.chosen = chosen
    return result


def _tier(sims: np.ndarray, labels: np.ndarray, pool: np.ndarray, min_precision: float,
          min_hits: int) -> tuple[float | None, dict[str, Any], np.ndarray]:
    """One tier's threshold over a square similarity matrix: each event against its most similar earlier one."""
    sim, idx = _best_earlier(sims)
    agree = np.array([i > 0 and labels[idx[i]] == labels[i] for i in range(len(labels))])
    t, info = _pick(sim, agree, pool, min_precision, min_hits)
    hit = pool & (sim >= t) if t is not None else np.zeros(len(labels), dtype=bool)
    return t, info, hit


__all__ = ["GRID", "MASKS", "TIERS", "DedupCache", "Embed", "Hit", "Thresholds", "choose_thresholds", "compatible",
           "event_key", "jaccard", "minilm_embedder", "normalise", "numbers", "tokens"]
