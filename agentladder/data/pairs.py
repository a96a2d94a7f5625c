"""Preference data: pairs sampled from a model and scored by a task's grader, and pairs from feedback.

From a task (``agentladder data pairs --model M --task T``): each prompt is
answered ``k`` times by sampling; the task's own parser and scorer grade every
answer (:func:`task_reward` turns the scores into one number); the best and
the worst answer become a pair when their rewards differ. Answers are appended
to ``<out>.partial`` prompt batch by prompt batch, so a killed run resumes where it
stopped. The same scored answers can be written as KTO rows instead: each
distinct answer is desirable when its reward reaches a threshold.

From feedback (``agentladder data pairs --feedback FILE``): conversations that
carry rewards (the agents runtime and review queues write them), grouped by
prompt, best against worst; rows already marked ``label`` true or false (a
thumbs up or down), grouped the same way; or pairs, passed through.

The task and the model come from :mod:`agentladder.evals` (its task registry and
providers), imported when a function needs them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentladder.data.io import DataError, iter_json_lines, validate_row, write_jsonl
from agentladder.data.schema import Conversation, MarkedResponse, Message, PreferencePair

if TYPE_CHECKING:
    from agentladder.models.providers import Provider
    from agentladder.tasks.task import Sample, Task

Format = Literal["pairs", "marked"]


def task_reward(scores: dict[str, Any]) -> float:
    """One number in ``[0, 1]`` from a task's per-row scores.

    A ``reward`` entry is used as it is. Otherwise exact match counts most, then the
    share of fields right, then validity: ``(2 exact + field share + 0.5 valid) / 3.5``
    over the entries present, so an exact answer scores 1.
    """
    if "reward" in scores:
        return float(scores["reward"])
    parts: list[tuple[float, float]] = []
    if "exact" in scores:
        parts.append((2.0, float(bool(scores["exact"]))))
    if isinstance(scores.get("fields"), dict) and scores["fields"]:
        fields = scores["fields"]
        parts.append((1.0, sum(bool(v) for v in fields.values()) / len(fields)))
    if "valid" in scores:
        parts.append((0.5, float(bool(scores["valid"]))))
    if not parts:
        raise ValueError(f"cannot read a reward from scores with keys {sorted(scores)}; give the task a 'reward' score")
    return sum(w * v for w, v in parts) / sum(w for w, _ in parts)


def best_vs_worst(answers: Sequence[str], rewards: Sequence[float]) -> tuple[int, int] | None:
    """Indices of the best and the worst answer (first of equals), or ``None`` when all rewards tie."""
    best = max(range(len(answers)), key=lambda i: (rewards[i], -i))
    worst = min(range(len(answers)), key=lambda i: (rewards[i], i))
    return None if rewards[best] == rewards[worst] else (best, worst)


def sample_and_score(task: Task, provider: Provider, samples: Sequence[Sample], out: str | os.PathLike, *,
                     k: int = 4, temperature: float = 1.0, max_new_tokens: int | None = None,
                     prompts_per_batch: int = 8, format: Format = "pairs", threshold: float = 1.0,
                     with_target: bool = False, progress: bool = True) -> dict[str, int]:
    """Answer each sample ``k`` times, grade every answer, write pairs (or marked rows) to ``out``.

    ``with_target`` adds the task's reference answer (``task.target_text``), graded like the
    others, as one more candidate: every prompt with a wrong sampled answer then gives a pair.

    Returns counts: ``prompts``, ``answers``, ``rows`` written, ``ties`` (prompts whose answers
    all scored the same, which give no pair).
    """
    from rich.progress import Progress

    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    done: dict[str, dict] = {}
    if partial.exists():
        for _, obj in iter_json_lines(partial):
            done[obj["id"]] = obj
    todo = [s for s in samples if s.id not in done]
    budget = max_new_tokens or task.max_new_tokens
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
                    rewards = [task_reward(task.score(sample, task.parse(a))) for a in answers]
                    record = {"id": sample.id, "answers": answers, "rewards": rewards}
                    done[sample.id] = record
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            bar.update(job, advance=len(chunk))
    rows: list[PreferencePair | MarkedResponse] = []
    ties = 0
    for sample in samples:
        record = done[sample.id]
        prompt = task.prompt(sample)
        answers, rewards = list(record["answers"]), list(record["rewards"])
        if with_target:
            target = task.target_text(sample)
            answers.append(target)
            rewards.append(task_reward(task.score(sample, task.parse(target))))
        meta = {"task": task.name, "source": provider.name}
        if format == "marked":
            seen: set[str] = set()
            for a, r in zip(answers, rewards, strict=True):
                if a not in seen:
                    seen.add(a)
                    rows.append(MarkedResponse(id=f"{sample.id}-{len(seen)}", prompt=prompt,
                                               completion=[Message(role="assistant", content=a)],
                                               label=r >= threshold, metadata={**meta, "reward": r}))
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


def pairs_from_task(model: str, task: str, n: int, out: str | os.PathLike, *, data: str | None = None,
                    split: str = "train", seed: int = 0, k: int = 4, temperature: float = 1.0,
                    max_new_tokens: int | None = None, batch_size: int = 16, format: Format = "pairs",
                    threshold: float = 1.0, with_target: bool = False, progress: bool = True) -> dict[str, int]:
    """:func:`sample_and_score` for a model spec and a task name, on ``n`` rows of a generated split
    (or of the task's data file ``data``). Sampling is seeded by ``seed``."""
    import torch

    from agentladder.models.providers import make_provider
    from agentladder.tasks import get_task

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


# -- feedback -------------------------------------------------------------------------------------
def _split_conversation(conv: Conversation) -> tuple[list[Message], list[Message]]:
    """Prompt (everything before the final run of assistant and tool turns) and response."""
    msgs = list(conv.messages)
    cut = len(msgs)
    while cut > 0 and msgs[cut - 1].role in ("assistant", "tool"):
        cut -= 1
    return msgs[:cut], msgs[cut:]


def _key(prompt: Sequence[Message]) -> str:
    return json.dumps([m.model_dump(mode="json", exclude_none=True) for m in prompt], sort_keys=True)


def read_feedback(path: str | os.PathLike, reward_key: str | None = None) -> list[tuple[list[Message], list[Message], float]]:
    """``(prompt, response, score)`` per row of a feedback file.

    Rows are conversations with ``rewards`` (score: ``rewards[reward_key]``, or their sum),
    or ``{prompt, completion, label}`` rows (score 1 for a thumbs up, 0 for down).
    Pairs give two rows (chosen 1, rejected 0).
    """
    out = []
    for lineno, obj in iter_json_lines(path):
        if isinstance(obj, dict) and "chosen" in obj:
            pair = validate_row(PreferencePair, obj, path, lineno)
            out += [(pair.prompt, pair.chosen, 1.0), (pair.prompt, pair.rejected, 0.0)]
        elif isinstance(obj, dict) and "label" in obj:
            row = validate_row(MarkedResponse, obj, path, lineno)
            out.append((row.prompt, row.completion, float(row.label)))
        else:
            conv = validate_row(Conversation, obj, path, lineno)
            prompt, response = _split_conversation(conv)
            if not prompt or not response:
                raise DataError(path, lineno, "messages", "needs a prompt followed by assistant turns")
            if reward_key is not None and reward_key not in conv.rewards:
                raise DataError(path, lineno, "rewards", f"no {reward_key!r} reward")
            if not conv.rewards:
                raise DataError(path, lineno, "rewards", "a feedback conversation needs a reward")
            score = conv.rewards[reward_key] if reward_key else sum(conv.rewards.values())
            out.append((prompt, response, float(score)))
    if not out:
        raise DataError(path, None, None, "no rows")
    return out


def pairs_from_feedback(path: str | os.PathLike, out: str | os.PathLike, *, format: Format = "pairs",
                        reward_key: str | None = None, threshold: float = 0.5) -> dict[str, int]:
    """Write pairs (best against worst per prompt) or KTO rows (score at least ``threshold``) from feedback."""
    rows = read_feedback(path, reward_key)
    written: list[PreferencePair | MarkedResponse] = []
    if format == "marked":
        written = [MarkedResponse(prompt=p, completion=r, label=s >= threshold, metadata={"score": s})
                   for p, r, s in rows]
    else:
        groups: dict[str, list[tuple[list[Message], list[Message], float]]] = {}
        for row in rows:
            groups.setdefault(_key(row[0]), []).append(row)
        for group in groups.values():
            pick = best_vs_worst([_key(r) for _, r, _ in group], [s for _, _, s in group])
            if pick is not None:
                (prompt, chosen, hi), (_, rejected, lo) = group[pick[0]], group[pick[1]]
                written.append(PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected,
                                              metadata={"chosen_score": hi, "rejected_score": lo}))
    write_jsonl(out, written)
    return {"rows_read": len(rows), "rows": len(written)}


__all__: list[str] = [
    "best_vs_worst",
    "pairs_from_feedback",
    "pairs_from_task",
    "read_feedback",
    "sample_and_score",
    "task_reward",
]
