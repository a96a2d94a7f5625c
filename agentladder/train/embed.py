"""Embedding fine-tuning: a sentence encoder taught the domain's words with a contrastive loss.

Training rows are ``(query, relevant passage, hard negative)`` triplets built from a knowledge-base
query file (:mod:`agentladder.tasks.retrieval.kb`). The hard negatives are mined with the *base*
model by ``sentence_transformers.util.mine_hard_negatives``: for each query the passages it ranks
highest that are not the relevant one (any passage the query lists as relevant is dropped again, since
the library only knows one positive per row). The loss is ``MultipleNegativesRankingLoss`` (Henderson
et al., 2017, arXiv:1705.00652; van den Oord et al.'s InfoNCE): the cross-entropy of picking the
positive among the batch's other positives (in-batch negatives) and the mined negatives, batches
drawn with no duplicate text so no row's positive is another's negative. The loop is
sentence-transformers' own trainer (``SentenceTransformerTrainer``).

The learning rate (and anything else given as a list) is chosen on the validation query file by
recall@5 (ties by MRR); every candidate's validation figures are kept in ``agentladder.json``. The
chosen model is saved in ``out_dir`` as a plain sentence-transformers folder. A candidate that finished
is reused when the same command runs again, so a killed run resumes at the next candidate.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentladder.data.io import atomic_write_text
from agentladder.errors import ConfigError, OutputExistsError
from agentladder.models.embedding import embedder_path
from agentladder.models.quiet import quiet_transformers
from agentladder.tasks.retrieval.kb import Passage, Query, load_split, query_file
from agentladder.tasks.retrieval.metrics import query_scores, summarise
from agentladder.tasks.retrieval.rankers import DenseRanker

LRS = (2e-5, 5e-5, 1e-4)
"""Learning rates tried by default (sentence-transformers' fine-tuning range for MiniLM-sized encoders)."""
MANIFEST = "agentladder.json"
SELECT = "recall@5"


@dataclass
class EmbedConfig:
    """The settings of one ``train embed`` run."""

    model: str = "minilm"
    """Base encoder: ``minilm`` (the packaged all-MiniLM-L6-v2) or a sentence-transformers / Hugging Face folder."""
    data: str = "kb/train.jsonl"
    """Training query file; its corpus is ``corpus.jsonl`` beside it unless ``corpus`` is given."""
    out_dir: str = "runs/embed1"
    validation: str | None = None
    """Query file that chooses the settings \\[default: ``validation.jsonl`` beside ``data``]."""
    corpus: str | None = None
    lrs: Sequence[float] = LRS
    epochs: int = 1
    batch_size: int = 32
    hard_negatives: int = 1
    """Mined negatives per query (0: in-batch negatives only)."""
    max_rows: int | None = None
    """Train on at most this many queries (a seeded draw)."""
    warmup_ratio: float = 0.1
    seed: int = 0
    overwrite: bool = False
    progress: bool = True


@dataclass
class EmbedResult:
    out_dir: Path
    learning_rate: float
    validation: dict[str, float]
    """The chosen candidate's figures on the validation queries."""
    base_validation: dict[str, float]
    tried: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    """Training time of the chosen candidate (mining and validation left out)."""
    examples: int = 0
    validation_data: str = ""
    """The validation query file that chose the settings."""


def _import_st():
    try:
        import sentence_transformers
    except ImportError:
        raise ConfigError("embedding training needs sentence-transformers: pip install 'agentladder[retrieval]'") from None
    return sentence_transformers


def _validation_path(config: EmbedConfig) -> Path:
    if config.validation:
        return query_file(config.validation)
    beside = query_file(config.data).parent / "validation.jsonl"
    if not beside.is_file():
        raise ConfigError(f"no validation queries: give --validation (looked for {beside})")
    return beside


def score(model: str | os.PathLike, passages: list[Passage], queries: list[Query]) -> dict[str, float]:
    """Mean recall@1/5/10, MRR and nDCG@10 of an encoder on ``queries`` (no intervals: for choosing)."""
    ranker = DenseRanker(model)
    ranker.fit([p.id for p in passages], [p.text for p in passages])
    ranked = ranker.rank([q.text for q in queries], 10)
    per_query = [query_scores([pid for pid, _ in r], q.relevant) for r, q in zip(ranked, queries, strict=True)]
    return {name: m.value for name, m in summarise(per_query, n_resamples=1).items()}


def triplets(base: Any, passages: list[Passage], queries: list[Query], n_negatives: int, *, progress: bool):
    """A ``datasets.Dataset`` of ``anchor``, ``positive`` (and ``negative``) rows, negatives mined with ``base``."""
    from datasets import Dataset

    st = _import_st()
    text = {p.id: p.text for p in passages}
    pairs = [(q.text, text[pid], q.relevant) for q in queries for pid in q.relevant]
    dataset = Dataset.from_dict({"anchor": [a for a, _, _ in pairs], "positive": [p for _, p, _ in pairs]})
    if n_negatives == 0:
        return dataset
    mined = st.util.mine_hard_negatives(
        dataset, base, corpus=[p.text for p in passages], num_negatives=n_negatives + 2, sampling_strategy="top",
        output_format="triplet", batch_size=64, verbose=progress)
    relevant_text = {q.text: {text[pid] for pid in q.relevant} for q in queries}
    kept: dict[str, int] = {}
    rows = {"anchor": [], "positive": [], "negative": []}
    for row in mined:
        if row["negative"] in relevant_text[row["anchor"]] or kept.get(row["anchor"], 0) >= n_negatives:
            continue
        kept[row["anchor"]] = kept.get(row["anchor"], 0) + 1
        for key in rows:
            rows[key].append(row[key])
    return Dataset.from_dict(rows)


def _train_one(config: EmbedConfig, base_path: str, dataset, lr: float, folder: Path) -> float:
    """Fine-tune a fresh copy of the base at learning rate ``lr`` into ``folder``; returns the seconds."""
    st = _import_st()
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    with quiet_transformers():
        model = st.SentenceTransformer(base_path, device="cpu", local_files_only=True)
    warmup = int(config.warmup_ratio * math.ceil(len(dataset) / config.batch_size) * config.epochs)
    args = st.SentenceTransformerTrainingArguments(
        output_dir=str(folder / "checkpoints"), num_train_epochs=config.epochs, learning_rate=lr,
        per_device_train_batch_size=config.batch_size, warmup_steps=warmup, seed=config.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to="none", use_cpu=True,
        disable_tqdm=not config.progress, logging_steps=50, dataloader_num_workers=0)
    trainer = st.SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                            loss=MultipleNegativesRankingLoss(model))
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    model.save(str(folder))
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    return seconds


def train_embed(config: EmbedConfig | None = None, **settings: Any) -> EmbedResult:
    """Fine-tune an embedding model on a knowledge base's training queries; the settings chosen on validation."""
    config = config or EmbedConfig(**settings)
    if not config.lrs:
        raise ConfigError("give at least one learning rate")
    out = Path(config.out_dir)
    if (out / MANIFEST).exists() and not config.overwrite:
        raise OutputExistsError(f"{out} already holds a trained embedder (--overwrite replaces it)")
    st = _import_st()
    base_path = str(embedder_path(config.model))
    passages, queries = load_split(config.data, config.corpus)
    _, val_queries = load_split(_validation_path(config), config.corpus or query_file(config.data).parent / "corpus.jsonl")
    if config.max_rows is not None and config.max_rows < len(queries):
        queries = random.Random(f"embed:{config.seed}").sample(queries, config.max_rows)
    dataset = None  # mined only when a candidate still has to train (a finished run resumes without it)
    base_val = score(base_path, passages, val_queries)
    tried = []
    for lr in config.lrs:
        folder = out / "candidates" / f"lr-{lr:g}"
        done = folder / "candidate.json"
        if done.is_file():
            tried.append(json.loads(done.read_text()))
            continue
        if dataset is None:
            with quiet_transformers():
                base = st.SentenceTransformer(base_path, device="cpu", local_files_only=True)
            dataset = triplets(base, passages, queries, config.hard_negatives, progress=config.progress)
        seconds = _train_one(config, base_path, dataset, lr, folder)
        entry = {"learning_rate": lr, "train_seconds": round(seconds, 2), "validation": score(folder, passages, val_queries),
                 "folder": str(folder), "examples": len(dataset)}
        atomic_write_text(done, json.dumps(entry) + "\n")
        tried.append(entry)
    best = max(tried, key=lambda t: (t["validation"][SELECT], t["validation"]["mrr"]))
    _install(Path(best["folder"]), out)
    result = EmbedResult(out, best["learning_rate"], best["validation"], base_val, tried, best["train_seconds"],
                         best.get("examples", 0), str(_validation_path(config)))
    manifest = {"kind": "embedder", "base_model": config.model, "base_path": base_path,
                "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
                "selected_by": SELECT, "learning_rate": result.learning_rate, "validation": result.validation,
                "base_validation": base_val, "tried": tried, "train_seconds": result.train_seconds,
                "examples": result.examples, "validation_data": result.validation_data}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return result


def _install(candidate: Path, out: Path) -> None:
    """Copy the chosen candidate's files into ``out`` (the candidates stay beside it for the record)."""
    for item in candidate.iterdir():
        if item.name == "candidate.json":
            continue
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, target)


__all__ = ["LRS", "MANIFEST", "EmbedConfig", "EmbedResult", "score", "train_embed", "triplets"]
