"""Ranking metrics of one query as pure functions, and their means with bootstrap intervals.

``ranked`` is the list of passage ids a retriever returned, best first; ``relevant`` the ids that
answer the query (binary relevance). Definitions as in Manning, Raghavan and Schuetze,
*Introduction to Information Retrieval* (2008), ch. 8; nDCG with the ``1 / log2(rank + 1)`` discount
of Jarvelin and Kekalainen (2002).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from agentladder.tasks.metrics import Metric, bootstrap_ci, mean_metric

KS = (1, 5, 10)
"""The cut-offs of recall@k reported."""


def recall_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """``|relevant ∩ ranked[:k]| / |relevant|``."""
    return len(set(ranked[:k]) & set(relevant)) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str]) -> float:
    """``1 / rank`` of the first relevant passage (1-based); 0 when none is ranked."""
    for i, pid in enumerate(ranked, start=1):
        if pid in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """``DCG@k / IDCG@k`` with ``DCG = sum_i rel_i / log2(i + 1)`` over ranks ``i = 1..k``."""
    dcg = sum(1.0 / math.log2(i + 1) for i, pid in enumerate(ranked[:k], start=1) if pid in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def query_scores(ranked: Sequence[str], relevant: Collection[str]) -> dict[str, float]:
    """Every figure of one query: ``recall@1/5/10``, ``mrr``, ``ndcg@10``."""
    out = {f"recall@{k}": recall_at(ranked, relevant, k) for k in KS}
    out["mrr"] = reciprocal_rank(ranked, relevant)
    out["ndcg@10"] = ndcg_at(ranked, relevant, 10)
    return out


def summarise(per_query: Sequence[dict[str, float]], *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Metric]:
    """The mean of each figure over the queries, with its percentile-bootstrap 95 % interval."""
    names = list(per_query[0]) if per_query else []
    return {name: mean_metric([q[name] for q in per_query], n_resamples=n_resamples, seed=seed) for name in names}


def paired_gain(before: Sequence[float], after: Sequence[float], *, n_resamples: int = 1000,
                seed: int = 0) -> Metric:
    """``mean(after - before)`` over the same queries, with a paired-bootstrap interval (queries resampled together)."""
    diffs = [b - a for a, b in zip(before, after, strict=True)]
    if not diffs:
        return Metric(None)
    low, high = bootstrap_ci(diffs, n_resamples=n_resamples, seed=seed)
    return Metric(sum(diffs) / len(diffs), low, high, len(diffs))


__all__ = ["KS", "ndcg_at", "paired_gain", "query_scores", "recall_at", "reciprocal_rank", "summarise"]
