"""``evaluate``: score one or more models on a task, side by side.

For each model: build every row's prompt (the same shots for all rows and
models), generate in chunks (appending each chunk to ``samples.jsonl`` in
the output folder, reusing stored outputs on a rerun), parse and score each
output, then summarise with bootstrap intervals. Optional extras run after
all models have answered: semantic similarity to the reference answer, an
LLM judge against a rubric, and the win rate of each model against a
baseline model. Local models are loaded one at a time and freed after.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agentladder.errors import ConfigError
from agentladder.evals.judge import Judge
from agentladder.evals.report import EvalReport, ModelResult
from agentladder.evals.samples import SampleStore, prompt_key
from agentladder.evals.similarity import semantic_similarity
from agentladder.models.providers import Provider, make_provider
from agentladder.rewards.judge import read_judge
from agentladder.rewards.judging import DEFAULT_RUBRIC
from agentladder.tasks.metrics import mean_metric
from agentladder.tasks.registry import get_task
from agentladder.tasks.task import Sample, Task


def load_rows(task: Task, data: str | os.PathLike | Sequence[Sample] | None, *, limit: int | None = None,
              seed: int = 0) -> tuple[list[Sample], str]:
    """The rows to evaluate and a description of where they came from.

    ``data`` is a file the task loads, a list of samples, or ``None`` for the
    task's default generated split (the test split of 300 rows, seed ``seed``).
    """
    if data is None:
        split, n = task.default_split
        rows = task.make(split, n if limit is None else min(n, limit), seed)
        source = f"generated {split} split ({len(rows)} rows, seed {seed})"
    elif isinstance(data, (str, os.PathLike)):
        rows, source = task.load(data), str(data)
    else:
        rows, source = list(data), "rows given in Python"
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise ConfigError("no rows to evaluate")
    return rows, source


def _label(spec: str | Provider, taken: set[str]) -> str:
    base = spec.name if isinstance(spec, Provider) else str(spec)
    label, i = base, 2
    while label in taken:
        label, i = f"{base} ({i})", i + 1
    taken.add(label)
    return label


def evaluate(
    models: str | Provider | Sequence[str | Provider],
    task: str | Task = "medication-directions",
    *,
    data: str | os.PathLike | Sequence[Sample] | None = None,
    shots: int = 0,
    limit: int | None = None,
    out: str | os.PathLike | None = None,
    batch_size: int = 8,
    dtype: str = "float32",
    max_new_tokens: int | None = None,
    data_seed: int = 0,
    similarity: bool = False,
    judge: str | Provider | None = None,
    rubric: str | None = None,
    baseline: str | Provider | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> EvalReport:
    """Evaluate ``models`` on ``task`` and return the report (written to ``out`` when given).

    ``models`` are specs (``smollm2-135m``, a run folder, ``openai:MODEL@URL``) or providers.
    ``shots`` few-shot examples come from the task's training pool, never from the rows.
    ``judge`` grades every answer against ``rubric``; with ``baseline`` as well, each other
    model's win rate against the baseline is judged (both orders, averaged). The baseline is
    evaluated like the others (added to ``models`` if it is not among them). Local models
    answer in ``dtype`` (``float32`` or ``bfloat16``); the judge loads as usual.
    """
    task = get_task(task)
    specs = [models] if isinstance(models, (str, Provider)) else list(models)
    if not specs:
        raise ConfigError("no models to evaluate")
    rows, source = load_rows(task, data, limit=limit, seed=data_seed)
    shot_rows = task.select_shots(shots, exclude=rows)
    prompts = [task.prompt(r, shot_rows) for r in rows]
    budget = max_new_tokens or task.max_new_tokens
    keys = [prompt_key(p, budget) for p in prompts]

    taken: set[str] = set()
    entries = [(_label(s, taken), s) for s in specs]
    baseline_label = None
    if baseline is not None:
        match = [label for label, s in entries if s is baseline or s == baseline]
        if match:
            baseline_label = match[0]
        else:
            baseline_label = _label(baseline, taken)
            entries.append((baseline_label, baseline))
        if judge is None:
            raise ConfigError("a win rate against a baseline needs a judge (--judge MODEL)")

    store = SampleStore(out) if out is not None else None
    results: dict[str, ModelResult] = {}
    for label, spec in entries:
        records, speed = _run_model(label, spec, task, rows, prompts, keys, budget, batch_size, dtype, store, progress)
        summary = task.summarise(rows, [r["score"] for r in records], n_resamples=n_resamples, seed=seed)
        results[label] = ModelResult(label=label, summary=summary, records=records, **speed)

    kw = {"n_resamples": n_resamples, "seed": seed}
    references = [task.target_text(r) for r in rows]
    if similarity:
        _add_similarity(results, references, kw)
    if judge is not None:
        _add_judgement(results, judge, rubric, [r.input for r in rows], references, baseline_label, batch_size, kw)

    report = EvalReport(
        task=task.name, description=task.description, note=getattr(task, "note", None), headline=task.headline,
        data=source, rows=len(rows), shots=shots, shot_ids=[s.id for s in shot_rows], max_new_tokens=budget,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), models=results,
    )
    if store is not None:
        store.finish([rec for result in results.values() for rec in result.records])
        report.write(out)
    return report


def _add_similarity(results: dict[str, ModelResult], references: list[str], kw: dict[str, Any]) -> None:
    """Each answer's semantic similarity to its reference, and each model's mean."""
    for result in results.values():
        sims = semantic_similarity([rec["output"] for rec in result.records], references)
        for rec, sim in zip(result.records, sims, strict=True):
            rec["similarity"] = sim
        result.extra["semantic_similarity"] = mean_metric(sims, **kw)


def _add_judgement(results: dict[str, ModelResult], judge: str | Provider, rubric: str | None, requests: list[str],
                   references: list[str], baseline_label: str | None, batch_size: int, kw: dict[str, Any]) -> None:
    """The judge's grade of every answer and, with a baseline, each model's win rate against it."""
    tuned = read_judge(judge) or {}  # a tuned judge (agentladder train judge) brings its rubric and scale
    judge_provider = make_provider(judge, batch_size=batch_size)
    grader = Judge(judge_provider, rubric or tuned.get("rubric") or DEFAULT_RUBRIC,
                   scale=tuple(tuned.get("scale") or (1, 5)))  # type: ignore[arg-type]
    for result in results.values():
        graded = grader.grade(requests, [rec["output"] for rec in result.records], references, **kw)
        for rec, verdict, raw in zip(result.records, graded.verdicts, graded.raw, strict=True):
            rec["judge"] = {"score": verdict.score, "reason": verdict.reason} if verdict else {"unscored": raw}
        result.extra["judge_score"] = graded.metric
        result.notes["judge_unscored"] = graded.unscored
    if baseline_label is not None:
        base_outputs = [rec["output"] for rec in results[baseline_label].records]
        for label, result in results.items():
            if label == baseline_label:
                continue
            pair = grader.win_rate(requests, [rec["output"] for rec in result.records], base_outputs, **kw)
            for rec, win in zip(result.records, pair.per_row, strict=True):
                rec["win_vs_baseline"] = win
            result.extra["win_rate"] = pair.metric
            result.notes.update(win_rate_baseline=baseline_label, win_rate_unscored=pair.unscored,
                                position_consistency=pair.consistency)
    if not isinstance(judge, Provider):
        judge_provider.close()


def _run_model(label: str, spec: str | Provider, task: Task, rows: list[Sample], prompts: list, keys: list[str],
               budget: int, batch_size: int, dtype: str, store: SampleStore | None,
               progress: bool) -> tuple[list, dict]:
    """Generate (or reuse) every row's output for one model; return the records and speed figures."""
    outputs: dict[int, str] = {}
    if store is not None:
        for i, (row, key) in enumerate(zip(rows, keys, strict=True)):
            stored = store.lookup(label, row.id, key)
            if stored is not None:
                outputs[i] = stored
    todo = [i for i in range(len(rows)) if i not in outputs]
    todo.sort(key=lambda i: sum(len(m.content or "") for m in prompts[i]))  # similar lengths batch together
    seconds = load_seconds = 0.0
    if todo:
        provider = make_provider(spec, batch_size=batch_size, dtype=dtype)
        start = time.perf_counter()
        provider.prepare()
        load_seconds = time.perf_counter() - start
        chunk = max(1, provider.batch_size) * 4
        with _ProgressBar(label, len(rows), len(outputs), progress) as advance:
            start = time.perf_counter()
            for c in range(0, len(todo), chunk):
                ids = todo[c : c + chunk]
                texts = provider.complete([prompts[i] for i in ids], max_new_tokens=budget,
                                          stop_at_json=task.stop_at_json, progress=advance)
                if len(texts) != len(ids):
                    raise ValueError(f"{label} answered {len(texts)} prompts of {len(ids)}")
                fresh = [_record(label, task, rows[i], keys[i], text) for i, text in zip(ids, texts, strict=True)]
                if store is not None:
                    store.append(fresh)
                outputs.update(zip(ids, texts, strict=True))
            seconds = time.perf_counter() - start
        if not isinstance(spec, Provider):
            provider.close()
    records = [_record(label, task, row, key, outputs[i]) for i, (row, key) in enumerate(zip(rows, keys, strict=True))]
    return records, {"generated": len(todo), "seconds": seconds, "load_seconds": load_seconds}


def _record(label: str, task: Task, row: Sample, key: str, output: str) -> dict[str, Any]:
    parsed = task.parse(output)
    return {"model": label, "id": row.id, "prompt_key": key, "input": row.input, "target": row.target,
            "output": output, "parse": parsed.to_json(), "score": task.score(row, parsed)}


class _ProgressBar:
    """A rich progress bar on stderr (rows, rows/s, ETA); yields the function that advances it."""

    def __init__(self, label: str, total: int, done: int, enabled: bool):
        self.label, self.total, self.done, self.enabled = label, total, done, enabled
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TaskProgressColumn(), TextColumn("{task.fields[speed]}"), TimeElapsedColumn(),
                             TextColumn("eta"), TimeRemainingColumn(), console=Console(file=sys.stderr))
        self._bar.start()
        task = self._bar.add_task(self.label, total=self.total, completed=self.done, speed="")
        start, first = time.perf_counter(), self.done

        def advance(n: int) -> None:
            self._bar.advance(task, n)
            finished = self._bar.tasks[0].completed - first
            self._bar.update(task, speed=f"{finished / max(time.perf_counter() - start, 1e-9):.2f} rows/s")

        return advance

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


def default_out(task: str) -> Path:
    """``reports/<task>-<UTC time>``: where a command-line evaluation writes when no ``--out`` is given."""
    return Path("reports") / f"{task}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"
