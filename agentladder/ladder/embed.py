"""An embedding model trained by ``train embed`` as a version in the model registry.

The version's ``kind`` and ``artifact`` are ``embed`` and ``embedder`` (a sentence-transformers folder);
its metrics are the validation figures that chose its settings (``decided_on``: the validation query
file), its headline recall@5; the base encoder is its ``base_model``.
"""

from __future__ import annotations

import os
from pathlib import Path

from agentladder.ladder.registry import ModelVersion, Registry, file_hash, version_id
from agentladder.train.embed import SELECT, EmbedConfig, EmbedResult


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


__all__ = ["embed_version", "register_embedder"]
