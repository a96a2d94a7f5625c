"""Preference data sampled from a model and graded by a task's reward.

``agentladder data pairs --model M --task T``: each prompt is answered ``k`` times by
sampling; the task's own parser and :meth:`~agentladder.tasks.Task.reward` grade every
answer; the best and the worst answer become a pair when their rewards differ
(:func:`~agentladder.data.pairs.best_vs_worst`). Answers are appended to
``<out>.partial`` prompt batch by prompt batch, so a killed run resumes where it
stopped, and with the random state it had there (kept beside it in ``<partial>.rng``):
a resumed run samples what the uninterrupted one would have. The same graded answers
can be written as KTO rows instead: each distinct answer is desirable when its reward
reaches a threshold.

This lives in ``evals`` because it runs a model on a task; pairs from feedback, which
run nothing, are made in :mod:`agentladder.data.pairs`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import Progress

from agentladder.data.io import append_json_lines, write_jsonl
from agentladder.data.pairs import Format, Pairing, best_vs_each_worse, best_vs_worst
from agentladder.data.rng import resume_appended, rng_marked
from agentladder.data.schema import MarkedResponse, Message, PreferencePair
from agentladder.models.providers import Provider, make_provider
from agentladder.tasks import Sample, Task, get_task


def graded_answers(task: Task, provider: Provider, samples: Sequence[Sample], partial: str | os.PathLike, *,
                   k: int, temperature: float, budget: int, greedy: bool = False, prompts_per_batch: int = 8,
                   progress: bool = True) -> dict[str, dict[str, Any]]:
    """``{id: {"id", "answers", "rewards"[, "greedy", "greedy_reward"]}}`` for every sample: ``k`` answers
    sampled at ``temperature`` and, with ``greedy``, the model's greedy answer, each graded by the task's
    reward. Samples already in ``partial`` are read back; the others are answered and appended to it one
    prompt batch at a time, so a killed run resumes where it stopped. Sampling draws on the global random
    state (torch's, the caller seeds it); its state before and after each batch is kept in ``<partial>.rng``,
    so a resumed run goes on from the state the killed one had, not from the seed, and samples the same answers
    as an uninterrupted run. The file goes once every sample is answered."""
    partial = Path(partial)
    rng = partial.with_name(partial.name + ".rng")
    rows = resume_appended(partial, rng)
    done: dict[str, dict[str, Any]] = {obj["id"]: obj for _, obj in rows}
    lines = len(rows)
    todo = [s for s in samples if s.id not in done or (greedy and "greedy" not in done[s.id])]
    what = f"{k} answers" + (" and the greedy one" if greedy else "") if k else "the greedy answer"
    with Progress(disable=not progress) as bar:
        job = bar.add_task(f"sampling {what} from {provider.name}", total=len(samples), completed=len(done))
        for b in range(0, len(todo), prompts_per_batch):
            chunk = todo[b : b + prompts_per_batch]
            prompts = [task.prompt(s) for s in chunk for _ in range(k)]
            with rng_marked(rng, lines, len(chunk)):
                texts = provider.complete(prompts, max_new_tokens=budget, temperature=temperature,
                                          stop_at_json=task.stop_at_json) if prompts else []
                firsts = provider.complete([task.prompt(s) for s in chunk], max_new_tokens=budget,
                                           temperature=0.0, stop_at_json=task.stop_at_json) if greedy else []
            lines += len(chunk)
            records = []
            for j, sample in enumerate(chunk):
                answers = texts[j * k : (j + 1) * k]
                record: dict[str, Any] = {"id": sample.id, "answers": answers,
                                          "rewards": [task.reward(sample, task.parse(a)) for a in answers]}
                if greedy:
                    record.update(greedy=firsts[j], greedy_reward=task.reward(sample, task.parse(firsts[j])))
                done[sample.id] = record
                records.append(record)
            append_json_lines(partial, records)
            bar.update(job, advance=len(chunk))
    rng.unlink(missing_ok=True)
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
                     with_target: bool = False, greedy: bool = False, max_rows: int | None = None,
                     graded_out: str | os.PathLike | None = None, pairing: Pairing = "best_vs_worst",
                     progress: bool = True) -> dict[str, int]:
    """Answer each sample ``k`` times, grade every answer, write pairs (or marked rows) to ``out``.

    The provider is asked through ``complete(prompts, max_new_tokens=, temperature=, stop_at_json=)``.
    ``with_target`` adds the task's reference answer (``task.target_text``), graded like the
    others, as one more candidate: every prompt with a wrong sampled answer then gives a pair.
    ``greedy`` adds the model's own greedy answer as a candidate, the rejected side wherever it is wrong
    (the model's actual error rather than an unlikely sample, even when a sample scored lower), and puts the prompts
    it gets wrong first: with ``max_rows`` the rows kept are the model's errors first. ``graded_out``
    keeps every graded answer (the record of what the rows were chosen from). ``pairing: each_worse`` writes the
    best answer against every distinct answer that scores below it instead of one pair a prompt.

    Returns counts: ``prompts``, ``answers``, ``rows`` written, ``ties`` (prompts whose answers
    all scored the same, which give no pair), ``errors`` (prompts whose greedy answer fell short).
    """
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    done = graded_answers(task, provider, samples, partial, k=k, temperature=temperature,
                          budget=max_new_tokens or task.max_new_tokens, greedy=greedy,
                          prompts_per_batch=prompts_per_batch, progress=progress)
    rows: list[tuple[bool, PreferencePair | MarkedResponse]] = []
    ties = errors = 0
    for sample in samples:
        record = done[sample.id]
        prompt = task.prompt(sample)
        answers, rewards = list(record["answers"]), list(record["rewards"])
        wrong = greedy and record["greedy_reward"] < threshold
        errors += wrong
        if greedy:
            answers.insert(0, record["greedy"])
            rewards.insert(0, record["greedy_reward"])
        if with_target:
            target = task.target_text(sample)
            answers.append(target)
            rewards.append(task.reward(sample, task.parse(target)))
        meta = {"task": task.name, "source": provider.name, **({"greedy_wrong": wrong} if greedy else {})}
        if format == "marked":
            rows += [(wrong, m) for m in _marked(sample, prompt, answers, rewards, threshold, meta)]
            continue
        if pairing == "each_worse":
            picks = best_vs_each_worse(answers, rewards)
        else:
            pick = best_vs_worst(answers, rewards)
            picks = [] if pick is None else [pick]
            if pick is not None and wrong and rewards[pick[0]] > rewards[0]:
                picks = [(pick[0], 0)]  # the model's own greedy error, even where a sample scored lower
        if not picks:
            ties += 1
            continue
        for j, (best, worse) in enumerate(picks):
            rows.append((wrong, PreferencePair(
                id=sample.id if len(picks) == 1 else f"{sample.id}-{j + 1}", prompt=prompt,
                chosen=[Message(role="assistant", content=answers[best])],
                rejected=[Message(role="assistant", content=answers[worse])],
                metadata={**meta, "chosen_reward": rewards[best], "rejected_reward": rewards[worse]})))
    if greedy:
        rows.sort(key=lambda row: not row[0])  # stable: the model's errors first, each group in sample order
    kept = [row for _, row in rows][:max_rows]
    write_jsonl(out, kept)
    if graded_out is not None:
        write_jsonl(graded_out, [done[s.id] for s in samples])
    partial.unlink(missing_ok=True)
    return {"prompts": len(samples), "answers": len(samples) * (k + greedy), "rows": len(kept), "ties": ties,
            "errors": errors}


def pairs_from_task(model: str, task: str | Task, n: int, out: str | os.PathLike, *, data: str | None = None,
                    samples: Sequence[Sample] | None = None, split: str = "train", seed: int = 0, k: int = 4,
                    temperature: float = 1.0, max_new_tokens: int | None = None, batch_size: int = 16,
                    format: Format = "pairs", threshold: float = 1.0, with_target: bool = False,
                    greedy: bool = False, max_rows: int | None = None, graded_out: str | os.PathLike | None = None,
                    pairing: Pairing = "best_vs_worst", progress: bool = True) -> dict[str, int]:
    """:func:`sample_and_score` for a model spec and a task (or its name), on ``n`` rows of a generated split
    (or of the task's data file ``data``, or the ``samples`` given). Sampling is seeded by ``seed``."""
    import torch  # heavy: only a run that samples needs it

    the_task = get_task(task)
    if samples is None:
        samples = the_task.load(data)[:n] if data else the_task.make(split, n, seed)
    torch.manual_seed(seed)
    provider = make_provider(model, batch_size=batch_size)
    try:
        return sample_and_score(the_task, provider, samples, out, k=k, temperature=temperature,
                                max_new_tokens=max_new_tokens, prompts_per_batch=max(1, batch_size // max(k, 1)),
                                format=format, threshold=threshold, with_target=with_target, greedy=greedy,
                                max_rows=max_rows, graded_out=graded_out, pairing=pairing, progress=progress)
    finally:
        provider.close()


def model_answers(model: str, task: str | Task, samples: Sequence[Sample], partial: str | os.PathLike, *, k: int,
                  temperature: float = 1.0, max_new_tokens: int | None = None, batch_size: int = 16,
                  greedy: bool = False, seed: int = 0, progress: bool = True) -> dict[str, dict[str, Any]]:
    """:func:`graded_answers` from a model name (alias, run folder or hub id): ``k`` sampled answers to each
    sample (and with ``greedy`` its greedy one), graded, resumable through ``partial``."""
    import torch  # heavy: only a run that samples needs it

    the_task = get_task(task)
    torch.manual_seed(seed)
    provider = make_provider(model, batch_size=batch_size)
    try:
        return graded_answers(the_task, provider, samples, partial, k=k, temperature=temperature,
                              budget=max_new_tokens or the_task.max_new_tokens, greedy=greedy,
                              prompts_per_batch=max(1, batch_size // k), progress=progress)
    finally:
        provider.close()


__all__ = ["graded_answers", "model_answers", "pairs_from_task", "sample_and_score"]
