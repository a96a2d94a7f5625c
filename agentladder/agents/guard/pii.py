"""Personal data: the pattern recognizers and a named-entity back end, combined into one detector.

The patterns (:mod:`~agentladder.agents.guard.recognizers`) find the structured identifiers; the
NER back end (:mod:`~agentladder.agents.guard.ner`) finds names, and the MiniLM tagger addresses
too. Their hits are merged (:func:`~agentladder.agents.guard.recognizers.resolve_overlaps`): spans of
one type that overlap become one, and across types the better-scored span wins.
"""

from __future__ import annotations

import threading

from agentladder.agents.guard.ner import NER, PresidioNER, UnionNER, installed_spacy_model
from agentladder.agents.guard.policy import NerBackend, PiiPolicy
from agentladder.agents.guard.recognizers import PATTERN_RECOGNIZERS, Hit, phones, resolve_overlaps
from agentladder.agents.guard.tagger import MiniLMTagger
from agentladder.errors import ConfigError

AUTO_NER = "presidio"
"""The back end ``ner: auto`` means: Presidio (a maintained library with a packaged model, no training on first
use), or the MiniLM tagger where no spaCy model is installed. Measured side by side (docs/guardrails.md),
``both`` has the best recall but calls too many words names in hand-written text, so ``auto`` stays Presidio."""
NER_TYPES = ("PERSON", "ADDRESS")
NER_BACKENDS: tuple[str, ...] = NerBackend.__args__  # type: ignore[attr-defined]

_ner_cache: dict[str, NER] = {}
_ner_lock = threading.Lock()


def ner_backend(name: str) -> NER | None:
    """The NER back end ``name`` (``auto``, ``presidio``, ``minilm``, ``both`` or ``none``), loaded once per process."""
    if name not in NER_BACKENDS:
        raise ConfigError(f"NER back end {name!r}: choose one of {', '.join(NER_BACKENDS)}")
    if name == "auto":
        name = AUTO_NER if AUTO_NER not in ("presidio", "both") or installed_spacy_model() else "minilm"
    if name == "none":
        return None
    if name == "both":
        return UnionNER(_loaded("presidio"), _loaded("minilm"))
    return _loaded(name)


def _loaded(name: str) -> NER:
    with _ner_lock:
        if name not in _ner_cache:
            _ner_cache[name] = PresidioNER() if name == "presidio" else MiniLMTagger()
        return _ner_cache[name]


class PIIDetector:
    """Finds the policy's entity types in a text view (spans of the view)."""

    def __init__(self, policy: PiiPolicy, ner: NER | None | str = None):
        self.policy = policy
        self.entities = set(policy.entities)
        self._ner = ner if ner is not None else policy.ner
        self._resolved: NER | None = None
        self._loaded = False

    @property
    def ner(self) -> NER | None:
        if not self._loaded:
            wanted = self.entities & set(NER_TYPES)
            self._resolved = (ner_backend(self._ner) if isinstance(self._ner, str) else self._ner) if wanted else None
            self._loaded = True
        return self._resolved

    def find(self, view: str) -> list[Hit]:
        hits: list[Hit] = []
        for kind, recognizer in PATTERN_RECOGNIZERS.items():
            if kind in self.entities:
                hits += recognizer(view)
        if "PHONE" in self.entities:
            hits += phones(view, self.policy.phone_regions)
        ner = self.ner
        if ner is not None:
            hits += [h for h in ner.find(view) if h.type in self.entities]
        return [h for h in resolve_overlaps(hits) if h.score >= self.policy.min_score]
