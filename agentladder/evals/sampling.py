"""Preference data sampled from a model and graded by a task's reward.

``agentladder data pairs --model M --task T``: each prompt is answered ``k`` times by
sampling; the task's own parser and :meth:`~agentladder.tasks.Task.reward` grade every
answer; the best and the worst answer become a pair when their rewards differ
(:func:`~agentladder.data.pairs.best_vs_worst`). Answers are appended to
``<out>.partial`` prompt batch by prompt batch, so a killed run resumes where it
stopped. The same graded answers can be written as KTO rows instead: each distinct
answer is desirable when its reward reaches a threshold.

This lives in ``evals`` because it runs a model on a task; pairs from feedback, which
run nothing, are made in :mod:`agentladder.data.pairs`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import Progress

from agentladder.data.io import iter_json_lines, write_jsonl
from agentladder.data.pairs import Format, best_vs_worst
from agentladder.data.schema import MarkedResponse, Message, PreferencePair
from agentladder.models.providers import Provider, make_provider
from agentladder.tasks import Sample, Task, get_task


def _answer(task: Task, provider: Provider, samples: Sequence[Sample], partial: Path, *, k: int,
            temperature: float, budget: int, prompts_per_batch: int, progress: bool) -> dict[str, dict[str, Any]]:
    """``{id: {"id", "answers", "rewards"}}`` for every sample: those in ``partial`` as stored, the others
    sampled ``k`` times, graded and appended to ``partial`` one prompt batch at a time."""
    done: dict[str, dict[str, Any]] = {}
    if partial.exists():
        for _, obj in iter_json_lines(partial):
            done[obj["id"]] = obj
    todo = [s for s in samples if s.id not in done]
    with Progress(disable=not progress) as bar:
        job = bar.add_task(f"sampling {k} answers from {provider.name}", total=len(samples), completed=len(done))
        for b in range(0, len(todo), prompts_per_batch):
            chunk = todo[b : b + prompts_per_batch]
            prompts = [task.prompt(s) for s in chunk for _ in range(k)]
            texts = provider.complete(prompts, max_new_tokens=budget, temperature=temperature,
                                      stop_at_json=task.stop_at_json)
            with partial.open("a", encoding="utf-8") as fh:
                for j, sample in enumerate(chunk):
                    answers = texts[j * k : (j + 1) * k]
                    rewards = [task.reward(sample, task.parse(a)) for a in answers]
                    record = {"id": sample.id, "answers": answers, "rewards": rewards}
                    done[sample.id] = record
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            bar.update(job, advance=len(chunk))
    return done


def _marked(sample: Sample, prompt: list[Message], answers: Sequence[str], rewards: Sequence[float],
            threshold: float, meta: dict[str, Any]) -> list[MarkedResponse]:
    """One KTO row per distinct answer, desirable when its reward reaches ``threshold``."""
    rows, seen = [], set()
    for a, r in zip(answers, rewards, strict=True):
        if a not in seen:
            seen.add(a)
            rows.append(MarkedResponse(id=f"{sample.id}-{len(seen)}", prompt=prompt,
                                       completion=[Message(role="assistant", content=a)],
                                       label=r >= threshold, metadata={**meta, "reward": r}))
    return rows


def sample_and_score(task: Task, provider: Provider, samples: Sequence[Sample], out: str | os.PathLike, *,
                     k: int = 4, temperature: float = 1.0, max_new_tokens: int | None = None,
                     prompts_per_batch: int = 8, format: Format = "pairs", threshold: float = 1.0,
                     with_target: bool = False, progress: bool = True) -> dict[str, int]:
    """Answer each sample ``k`` times, grade every answer, write pairs (or marked rows) to ``out``.

    The provider is asked through ``complete(prompts, max_new_tokens=, temperature=, stop_at_json=)``.
    ``with_target`` adds the task's reference answer (``task.target_text``), graded like the
    others, as one more candidate: every prompt with a wrong sampled answer then gives a pair.

    Returns counts: ``prompts``, ``answers``, ``rows`` written, ``ties`` (prompts whose answers
    all scored the same, which give no pair).
    """
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    done = _answer(task, provider, samples, partial, k=k, temperature=temperature,
                   budget=max_new_tokens or task.max_new_tokens, prompts_per_batch=prompts_per_batch,
                   progress=progress)
    rows: list[PreferencePair | MarkedResponse] = []
    ties = 0
    for sample in samples:
        record = done[sample.id]
        prompt = task.prompt(sample)
        answers, rewards = list(record["answers"]), list(record["rewards"])
        if with_target:
            target = task.target_text(sample)
            answers.append(target)
            rewards.append(task.reward(sample, task.parse(target)))
        meta = {"task": task.name, "source": provider.name}
        if format == "marked":
            rows += _marked(sample, prompt, answers, rewards, threshold, meta)
            continue
        pick = best_vs_worst(answers, rewards)
        if pick is None:
            ties += 1
            continue
        best, worst = pick
        rows.append(PreferencePair(id=sample.id, prompt=prompt, chosen=[Message(role="assistant", content=answers[best])],
                                   rejected=[Message(role="assistant", content=answers[worst])],
                                   metadata={**meta, "chosen_reward": rewards[best],
                                             "rejected_reward": rewards[worst]}))
    write_jsonl(out, rows)
    partial.unlink(missing_ok=True)
    return {"prompts": len(samples), "answers": len(samples) * k, "rows": len(rows), "ties": ties}


def pairs_from_task(model: str, task: str | Task, n: int, out: str | os.PathLike, *, data: str | None = None,
                    split: str = "train", seed: int = 0, k: int = 4, temperature: float = 1.0,
                    max_new_tokens: int | None = None, batch_size: int = 16, format: Format = "pairs",
                    threshold: float = 1.0, with_target: bool = False, progress: bool = True) -> dict[str, int]:
    """:func:`sample_and_score` for a model spec and a task (or its name), on ``n`` rows of a generated split
    (or of the task's data file ``data``). Sampling is seeded by ``seed``."""
    import torch  # heavy: only a run that samples needs it

    the_task = get_task(task)
    samples = the_task.load(data)[:n] if data else the_task.make(split, n, seed)
    torch.manual_seed(seed)
    provider = make_provider(model, batch_size=batch_size)
    try:
        return sample_and_score(the_task, provider, samples, out, k=k, temperature=temperature,
                                max_new_tokens=max_new_tokens, prompts_per_batch=max(1, batch_size // k),
                                format=format, threshold=threshold, with_target=with_target, progress=progress)
    finally:
        provider.close()


__all__ = ["pairs_from_task", "sample_and_score"]
