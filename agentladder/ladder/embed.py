"""An embedding model trained by ``train embed`` as a version in the model registry, and a rung's scoring.

The version's ``kind`` and ``artifact`` are ``embed`` and ``embedder`` (a sentence-transformers folder);
its metrics are the validation figures that chose its settings (``decided_on``: the validation query
file), its headline recall@5; the base encoder is its ``base_model``.

:func:`score_queries` scores an embedder on a retrieval ladder's split (a query file, its corpus beside
it) as the climb scores every rung: recall@1/5/10, MRR and nDCG@10 with bootstrap intervals, and one
outcome per query for the paired test (a relevant passage in the top k of the headline's recall@k).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from agentladder.ladder.registry import ModelVersion, Registry, file_hash, version_id
from agentladder.ladder.scoring import SplitScore
from agentladder.ladder.splits import Split
from agentladder.tasks.retrieval.kb import load_split
from agentladder.tasks.retrieval.metrics import query_scores, summarise
from agentladder.tasks.retrieval.rankers import DenseRanker
from agentladder.train.embed import SELECT, EmbedConfig, EmbedResult


def score_queries(embedder: str, split: Split, *, metric: str = SELECT, seed: int = 0) -> SplitScore:
    """``embedder``'s ranking figures on ``split`` (see the module docstring)."""
    start = time.perf_counter()
    passages, queries = load_split(split.path)
    ranker = DenseRanker(embedder)
    ranker.fit([p.id for p in passages], [p.text for p in passages])
    ranked = ranker.rank([q.text for q in queries], 10)
    per_query = [query_scores([pid for pid, _ in r], q.relevant) for r, q in zip(ranked, queries, strict=True)]
    metrics = {name: m.to_json() for name, m in summarise(per_query, seed=seed).items()}
    k = int(metric.split("@")[1]) if metric.startswith("recall@") else None
    outcomes = "".join("-" if k is None else "1" if any(pid in q.relevant for pid, _ in r[:k]) else "0"
                       for r, q in zip(ranked, queries, strict=True))
    return SplitScore(metrics, outcomes, time.perf_counter() - start)


def embed_version(result: EmbedResult, config: EmbedConfig, *, ladder: str = "embed",
                  rung: str | None = None) -> ModelVersion:
    """The registry row of a finished embedding run."""
    rung = rung or Path(config.out_dir).name
    data = str(Path(config.data).resolve())
    validation = Path(result.validation_data).resolve()
    return ModelVersion(
        id=version_id(ladder, rung, config.out_dir), ladder=ladder, rung=rung, kind="embed",
        path=str(Path(config.out_dir).resolve()), artifact="embedder", base_model=config.model,
        config={"learning_rate": result.learning_rate, "epochs": config.epochs, "batch_size": config.batch_size,
                "hard_negatives": config.hard_negatives, "tried": [t["learning_rate"] for t in result.tried]},
        data_path=data, data_hash=file_hash(data), examples=result.examples, train_seconds=result.train_seconds,
        headline=SELECT, score=result.validation[SELECT], metrics={k: {"value": v} for k, v in result.validation.items()},
        task="retrieval", notes={"base_validation": result.base_validation},
        decided_on={"split": "validation", "path": str(validation), "hash": file_hash(validation)})


def register_embedder(result: EmbedResult, config: EmbedConfig, registry: str | os.PathLike | None = None,
                      **names: str) -> ModelVersion:
    """Write the run's version into the registry (``$AGENTLADDER_DB``, else ``agentladder.db``)."""
    version = embed_version(result, config, **names)
    with Registry(registry) as reg:
        return reg.register(version)


__all__ = ["embed_version", "register_embedder", "score_queries"]
