"""Scoring retrievers on a knowledge-base split: recall@k, MRR and nDCG@10 with bootstrap intervals.

Every ranker (an embedding model, ``bm25``, ``hybrid:MODEL``; see
:func:`~agentladder.tasks.retrieval.rankers.make_ranker`) ranks the whole corpus for every query of
the split; each figure is a mean over the queries with its 95 % percentile-bootstrap interval, and each
model after the first also gets its paired gain over the first (the queries resampled together). The
report is a rich table, ``report.json``, ``report.md`` and ``rankings.jsonl`` (each query's top 10 per
model), the same shape of folder as the other evaluations.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agentladder.data.io import atomic_write_text, write_jsonl
from agentladder.tasks.metrics import Metric
from agentladder.tasks.retrieval.kb import load_split, query_file
from agentladder.tasks.retrieval.metrics import paired_gain, query_scores, summarise
from agentladder.tasks.retrieval.rankers import make_ranker

DEPTH = 10
"""How many passages each query's ranking keeps (nDCG@10 and recall@10 need 10)."""
GAINS = ("recall@5", "mrr", "ndcg@10")
"""The figures whose paired gain over the first model is reported."""


@dataclass
class RetrievalResult:
    label: str
    metrics: dict[str, Metric]
    per_query: list[dict[str, float]]
    rankings: list[list[tuple[str, float]]]
    seconds: float
    """Wall time of encoding the corpus and the queries and ranking."""
    gains: dict[str, Metric] = field(default_factory=dict)


@dataclass
class RetrievalReport:
    data: str
    corpus_size: int
    queries: int
    created: str
    models: dict[str, RetrievalResult]

    def to_json(self) -> dict[str, Any]:
        return {"task": "retrieval", "data": self.data, "corpus": self.corpus_size, "rows": self.queries,
                "created": self.created,
                "models": {label: {**{k: m.to_json() for k, m in r.metrics.items()},
                                   "gain_over_first": {k: m.to_json() for k, m in r.gains.items()},
                                   "seconds": round(r.seconds, 3)} for label, r in self.models.items()}}

    def table(self):
        from rich.table import Table

        table = Table(title=f"retrieval: {self.queries} queries, {self.corpus_size} passages", title_justify="left")
        table.add_column("figure [95 % CI]", style="bold")
        for label in self.models:
            table.add_column(label, justify="right", overflow="fold")
        for name in next(iter(self.models.values())).metrics:
            table.add_row(name, *[str(r.metrics[name]) for r in self.models.values()])
        for name in GAINS if len(self.models) > 1 else ():
            table.add_row(f"{name} gain", *["" if not r.gains else str(r.gains[name]) for r in self.models.values()])
        return table

    def markdown(self) -> str:
        first = next(iter(self.models))
        names = list(self.models[first].metrics)
        lines = ["# Evaluation: retrieval", "", f"- data: {self.data} ({self.queries} queries, "
                 f"{self.corpus_size} passages)", f"- created: {self.created}",
                 "- intervals: 95 % percentile bootstrap over queries; gains paired, over the same queries", "",
                 "| model | " + " | ".join(names) + " |", "| --- | " + " | ".join("---:" for _ in names) + " |"]
        lines += [f"| {label} | " + " | ".join(str(r.metrics[n]) for n in names) + " |"
                  for label, r in self.models.items()]
        if len(self.models) > 1:
            lines += ["", f"## Gain over {first}", "", "| model | " + " | ".join(GAINS) + " |",
                      "| --- | " + " | ".join("---:" for _ in GAINS) + " |"]
            lines += [f"| {label} | " + " | ".join(str(r.gains[n]) for n in GAINS) + " |"
                      for label, r in self.models.items() if r.gains]
        return "\n".join(lines) + "\n"

    def write(self, out: str | os.PathLike, query_ids: list[str]) -> Path:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "report.json", json.dumps(self.to_json(), indent=2) + "\n")
        atomic_write_text(folder / "report.md", self.markdown())
        rows = [{"model": label, "query": qid, "top": [pid for pid, _ in ranking], **scores}
                for label, r in self.models.items()
                for qid, ranking, scores in zip(query_ids, r.rankings, r.per_query, strict=True)]
        write_jsonl(folder / "rankings.jsonl", rows)
        return folder


def _label(spec: str, taken: set[str]) -> str:
    """A short column name: the last part of a folder path (``hybrid:`` kept)."""
    prefix, _, rest = spec.rpartition("hybrid:")
    label = "hybrid:" * bool(_) + (rest.rstrip("/").split("/")[-1] or rest or "minilm")
    while label in taken:
        label += "'"
    taken.add(label)
    return label


def evaluate_retrieval(models: list[str], data: str | os.PathLike, *, corpus: str | os.PathLike | None = None,
                       out: str | os.PathLike | None = None, limit: int | None = None, n_resamples: int = 1000,
                       seed: int = 0) -> RetrievalReport:
    """Score each ranker spec in ``models`` on the queries of ``data`` against its corpus; write to ``out``."""
    passages, queries = load_split(data, corpus)
    queries = queries[:limit] if limit else queries
    ids, texts = [p.id for p in passages], [p.text for p in passages]
    results: dict[str, RetrievalResult] = {}
    taken: set[str] = set()
    for spec in models:
        start = time.perf_counter()
        ranker = make_ranker(spec)
        ranker.fit(ids, texts)
        rankings = ranker.rank([q.text for q in queries], DEPTH)
        seconds = time.perf_counter() - start
        per_query = [query_scores([pid for pid, _ in r], q.relevant) for r, q in zip(rankings, queries, strict=True)]
        results[_label(spec, taken)] = RetrievalResult(
            _label(spec, set()), summarise(per_query, n_resamples=n_resamples, seed=seed), per_query, rankings, seconds)
    base = next(iter(results.values()))
    for result in list(results.values())[1:]:
        result.gains = {n: paired_gain([q[n] for q in base.per_query], [q[n] for q in result.per_query],
                                       n_resamples=n_resamples, seed=seed) for n in GAINS}
    report = RetrievalReport(str(query_file(data)), len(passages), len(queries),
                             datetime.now(timezone.utc).isoformat(timespec="seconds"), results)
    if out is not None:
        report.write(out, [q.id for q in queries])
    return report


__all__ = ["DEPTH", "RetrievalReport", "RetrievalResult", "evaluate_retrieval"]
