"""Rankers: passages ordered for a query by an embedding model, by BM25, or by both fused.

- :class:`DenseRanker`: cosine of normalised sentence embeddings (the packaged MiniLM, a tuned folder
  or any sentence-transformers model), exact search by one matrix product;
- :class:`BM25Ranker`: Okapi BM25 through ``bm25s`` (Lucene's variant, English stop words);
- :class:`HybridRanker`: both lists fused by reciprocal rank fusion, ``score(d) = sum 1 / (k + rank(d))``
  over the two rankings (Cormack, Clarke and Buettcher, SIGIR 2009; ``k = 60`` as there).

:func:`make_ranker` turns a spec into one: ``bm25``, ``hybrid:SPEC`` or an embedder spec.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from agentladder.errors import ConfigError
from agentladder.models.embedding import embedder_path, load_embedder

RRF_K = 60

_FINGERPRINT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json", "modules.json",
                      "tokenizer.json", "1_Pooling/config.json", "sentence_bert_config.json")


@functools.cache
def _fingerprint(folder: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    for name in _FINGERPRINT_FILES:
        path = Path(folder) / name
        if path.is_file():
            h.update(name.encode())
            with path.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def embedder_fingerprint(embedder: str | os.PathLike | None) -> str:
    """A hash of the embedder's weights and configuration: two folders with the same model agree."""
    folder = embedder_path(embedder)
    stamp = tuple((f, os.stat(folder / f).st_mtime_ns) for f in _FINGERPRINT_FILES if (folder / f).is_file())
    return _fingerprint(str(folder), stamp)


class Ranker(Protocol):
    """Fitted on passages, returns for each query the ids of the best ``k``, best first."""

    name: str

    def fit(self, ids: Sequence[str], texts: Sequence[str]) -> None: ...

    def rank(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]: ...


def encode(model: str | os.PathLike | None, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """``(N, D)`` float32 normalised embeddings of ``texts`` by the embedding model ``model``."""
    encoder = load_embedder(model)
    out = encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                         show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)


def top_k(scores: np.ndarray, ids: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """For each row of ``scores`` ``(Q, N)``, the ``k`` best ``(id, score)``, best first (ties by index)."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(ids[j], float(row[j])) for j in idx] for row, idx in zip(scores, order, strict=True)]


class DenseRanker:
    """Exact cosine search over the passages' embeddings."""

    def __init__(self, model: str | os.PathLike | None = None, *, batch_size: int = 64):
        self.model = str(embedder_path(model))
        self.name = "minilm" if model is None else str(model)
        self.batch_size = batch_size
        self.ids: list[str] = []
        self.vectors: np.ndarray | None = None

    def fit(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        self.ids = list(ids)
        self.vectors = encode(self.model, texts, self.batch_size)

    def rank(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        if self.vectors is None:
            raise ConfigError("the ranker has no passages: call fit first")
        q = encode(self.model, queries, self.batch_size)  # (Q, D)
        return top_k(q @ self.vectors.T, self.ids, k)


class BM25Ranker:
    """Okapi BM25 (``bm25s``, Lucene's scoring) with English stop words removed."""

    name = "bm25"

    def __init__(self, *, k1: float = 1.5, b: float = 0.75):
        try:
            import bm25s
        except ImportError:
            raise ConfigError("BM25 needs bm25s: pip install 'agentladder[retrieval]'") from None
        self._bm25s = bm25s
        self.index = bm25s.BM25(k1=k1, b=b)
        self.ids: list[str] = []

    def fit(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        self.ids = list(ids)
        self.index.index(self._bm25s.tokenize(list(texts), stopwords="en", show_progress=False), show_progress=False)

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """``(Q, N)`` BM25 score of every passage for every query (0 where no query word occurs)."""
        tokens = self._bm25s.tokenize(list(queries), stopwords="en", return_ids=False, show_progress=False)
        return np.stack([self.index.get_scores(words) for words in tokens]).astype(np.float32)

    def rank(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        return top_k(self.scores(queries), self.ids, k)


class HybridRanker:
    """A dense and a BM25 ranking fused by reciprocal rank fusion."""

    def __init__(self, model: str | os.PathLike | None = None, *, depth: int = 100, rrf_k: int = RRF_K):
        self.dense = DenseRanker(model)
        self.bm25 = BM25Ranker()
        self.name = f"hybrid:{self.dense.name}"
        self.depth = depth
        self.rrf_k = rrf_k

    def fit(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        self.dense.fit(ids, texts)
        self.bm25.fit(ids, texts)

    def rank(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        lists = (self.dense.rank(queries, self.depth), self.bm25.rank(queries, self.depth))
        return [rrf([a, b], k, self.rrf_k) for a, b in zip(*lists, strict=True)]


def rrf(rankings: Sequence[Sequence[tuple[str, float]]], k: int, rrf_k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of several rankings: ``score(d) = sum_r 1 / (rrf_k + rank_r(d))``, best ``k``."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, (pid, _) in enumerate(ranking, start=1):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused.items(), key=lambda kv: -kv[1])[:k]


def make_ranker(spec: str) -> Ranker:
    """``bm25``, ``hybrid:EMBEDDER`` (``hybrid`` alone: the packaged MiniLM) or an embedder spec."""
    if spec == "bm25":
        return BM25Ranker()
    if spec == "hybrid" or spec.startswith("hybrid:"):
        model = spec.partition(":")[2] or None
        return HybridRanker(model)
    return DenseRanker(spec)


__all__ = ["BM25Ranker", "DenseRanker", "HybridRanker", "RRF_K", "Ranker", "embedder_fingerprint", "embedder_path", "encode",
           "make_ranker", "rrf", "top_k"]
