"""The triage pipeline: the dedup cache, then the model with a few retrieved examples.

For each event, in the order they arrive:

1. the :class:`~dedup.DedupCache` answers it if an earlier event is close enough (exact, overlap or
   semantic tier), with that event's label;
2. otherwise the model answers: a classifier folder classifies the text; a generative model is prompted
   with the task's instruction and the ``k`` labelled events most similar to this one (**dynamic
   few-shot**: retrieved by MiniLM cosine from a labelled store, the most similar last, next to the event);
3. the model's answer is cached for the events after it.

``TriagePipeline(backend, cache=None, store=None)`` is the model alone: every event is a model call, and a
generative model gets the task's fixed examples (``fixed_shots``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from dedup import DedupCache, Embed, normalise

from agentladder.models.providers import ClassifierProvider, make_provider
from agentladder.tasks import get_task
from agentladder.tasks.task import Sample


class Backend:
    """The model behind the cache: any agentladder model spec (an alias, a run folder, a classifier folder)."""

    def __init__(self, model: str, task: str = "log-triage"):
        self.model = model
        self.task = get_task(task)
        self.provider = make_provider(model, batch_size=1)
        self.calls = 0

    @property
    def generative(self) -> bool:
        """Whether examples in the prompt reach the model (a classifier reads the event alone)."""
        return not isinstance(self.provider, ClassifierProvider)

    def answer(self, text: str, shots: Sequence[Sample] = ()) -> str | None:
        """The label the model gives ``text`` (``None`` when its answer names none)."""
        prompt = self.task.prompt(Sample("event", text, None), list(shots))
        self.calls += 1
        out = self.provider.complete([prompt], max_new_tokens=self.task.max_new_tokens)[0]
        return self.task.parse(out).value

    def close(self) -> None:
        self.provider.close()


class FewShotStore:
    """Labelled events, retrieved by similarity as a generative model's examples."""

    def __init__(self, samples: Sequence[Sample], embed: Embed):
        self.samples = list(samples)
        self.embed = embed
        self.vectors = np.asarray(embed([normalise(s.input) for s in self.samples]), dtype=np.float32)

    def nearest(self, vector: np.ndarray, k: int) -> list[Sample]:
        """The ``k`` most similar labelled events, the most similar last."""
        if k <= 0:
            return []
        order = np.argsort(-(self.vectors @ vector))[:k]
        return [self.samples[i] for i in reversed(order)]


@dataclass
class Decision:
    label: str | None
    tier: str
    """``exact``, ``overlap``, ``semantic`` (a cache hit) or ``model``."""
    seconds: float
    similarity: float | None = None
    matched: str | None = None
    """A hit: the cached event that answered."""


class TriagePipeline:
    """See the module docstring."""

    def __init__(self, backend: Backend, *, cache: DedupCache | None = None, store: FewShotStore | None = None,
                 k: int = 3, fixed_shots: Sequence[Sample] = ()):
        self.backend = backend
        self.cache = cache
        self.store = store
        self.k = k
        self.fixed_shots = list(fixed_shots)

    def _embed(self, text: str) -> np.ndarray:
        embed = self.store.embed if self.store is not None else self.cache.embed  # type: ignore[union-attr]
        return np.asarray(embed([normalise(text)])[0], dtype=np.float32)

    def triage(self, text: str) -> Decision:
        """One event's label, and where it came from."""
        start = time.perf_counter()
        vec: list[np.ndarray] = []

        def vector() -> np.ndarray:
            if not vec:
                vec.append(self._embed(text))
            return vec[0]

        if self.cache is not None:
            hit = self.cache.lookup(text, vector)
            if hit.tier != "miss":
                return Decision(hit.label, hit.tier, time.perf_counter() - start, hit.similarity,
                                self.cache.texts[hit.matched])  # type: ignore[index]
        shots = self.fixed_shots
        if self.store is not None and self.backend.generative:
            shots = self.store.nearest(vector(), self.k)
        label = self.backend.answer(text, shots)
        if self.cache is not None and label is not None:
            semantic = self.cache.thresholds.semantic is not None
            self.cache.add(text, label, vector() if semantic else None)
        return Decision(label, "model", time.perf_counter() - start)


__all__ = ["Backend", "Decision", "FewShotStore", "TriagePipeline"]
