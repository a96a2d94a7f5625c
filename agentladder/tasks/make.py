"""Generated data for a task: evaluation rows, or SFT conversations built on the evaluation's prompt."""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import Any, Literal

from agentladder.data.io import write_jsonl
from agentladder.data.schema import Conversation
from agentladder.errors import ConfigError
from agentladder.tasks.registry import get_task
from agentladder.tasks.task import Sample, Task, input_key

Format = Literal["rows", "sft"]


def sft_conversations(task: str | Task, samples: Sequence[Sample]) -> list[Conversation]:
    """Each sample as ``[system, user, assistant(target)]``: exactly the zero-shot evaluation prompt, answered."""
    task = get_task(task)
    return [task.to_sft(s) for s in samples]


BALANCE_POOL = 8
"""A rebalanced draw picks its rows from this many times as many generated rows."""


def rebalance(samples: Sequence[Sample], key: str, n: int, *, seed: int = 0, power: float = 0.5,
              repeat: bool = True) -> list[Sample]:
    """``n`` of ``samples`` drawn so that each value of ``target[key]`` comes up in proportion to its count ** ``power``.

    With the default square root, a value that fills 45 % of ``samples`` and one that fills 2 % are
    drawn about 4.7 times as often relative to each other instead of 22 times: rare cases are seen more
    often, common ones still most. Within a value, rows come in their order, and again from the first
    once all have been used; with ``repeat=False`` a value whose rows are all used is drawn no more, so
    every row comes at most once (and fewer than ``n`` come back when ``samples`` runs out).
    """
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        target = sample.target if isinstance(sample.target, dict) else {}
        if key not in target:
            raise ConfigError(f"cannot balance on {key!r}: row {sample.id} has no target field {key!r}")
        groups[repr(target[key])].append(sample)
    keys = sorted(groups)
    weights = [len(groups[k]) ** power for k in keys]
    rng = random.Random(f"rebalance:{key}:{seed}")
    used = dict.fromkeys(keys, 0)
    out = []
    if repeat:
        for k in rng.choices(keys, weights=weights, k=n):
            out.append(groups[k][used[k] % len(groups[k])])
            used[k] += 1
        return out
    left = dict(zip(keys, weights, strict=True))
    while len(out) < n and left:
        k = rng.choices(list(left), weights=list(left.values()))[0]
        out.append(groups[k][used[k]])
        used[k] += 1
        if used[k] == len(groups[k]):
            del left[k]
    return out


def fresh_samples(task: str | Task, split: str, n: int, *, seed: int = 0,
                  exclude: Collection[str] = ()) -> list[Sample]:
    """``n`` generated rows of ``split`` whose inputs (:func:`~agentladder.tasks.task.input_key`) are not in
    ``exclude``: the first ``n`` such rows of the seeded stream, drawn in growing batches.

    A generator's stream starts with the same rows at any size, so two callers with the same seed get the
    same rows; this is what keeps one rung's data off every row an earlier rung or a held-out split used.
    """
    task = get_task(task)
    if not exclude:
        return task.make(split, n, seed)
    want = n
    while True:
        drawn = task.make(split, want, seed)
        fresh = [s for s in drawn if input_key(s.input) not in exclude]
        if len(fresh) >= n:
            return fresh[:n]
        want = max(2 * want, want + (n - len(fresh)) * 2)


def draw_samples(task: str | Task, split: str, n: int, *, seed: int = 0, exclude: Collection[str] = (),
                 balance: str | None = None, repeat: bool = True) -> list[Sample]:
    """``n`` fresh rows of ``split`` (:func:`fresh_samples`); with ``balance``, :func:`rebalance`-d on that target
    field from ``BALANCE_POOL`` times as many fresh rows (with ``repeat=False`` no row twice)."""
    if not balance:
        return fresh_samples(task, split, n, seed=seed, exclude=exclude)
    pool = fresh_samples(task, split, BALANCE_POOL * n, seed=seed, exclude=exclude)
    return rebalance(pool, balance, n, seed=seed, repeat=repeat)


def make_data(task: str | Task, split: str, n: int, *, seed: int = 0, format: Format = "rows",
              balance: str | None = None, exclude: Collection[str] = ()) -> list[dict[str, Any]]:
    """``n`` generated rows of ``split`` as task rows (``rows``) or SFT conversations (``sft``).

    ``balance`` names a target field whose values are drawn more evenly (:func:`rebalance`, from
    ``BALANCE_POOL`` times as many generated rows): for training data, never for an evaluation split.
    ``exclude``: normalised inputs the rows may not have (:func:`fresh_samples`).
    """
    task = get_task(task)
    samples = draw_samples(task, split, n, seed=seed, exclude=exclude, balance=balance)
    if format == "rows":
        return [task.to_row(s) for s in samples]
    if format == "sft":
        return [c.model_dump(mode="json", exclude_none=True) for c in sft_conversations(task, samples)]
    raise ConfigError(f"unknown format {format!r}: choose rows or sft")


def write_data(task: str | Task, split: str, n: int, out: str | os.PathLike, *, seed: int = 0,
               format: Format = "rows", balance: str | None = None, exclude: Collection[str] = ()) -> int:
    """:func:`make_data` written atomically to a JSONL file; returns the number of rows."""
    return write_jsonl(out, make_data(task, split, n, seed=seed, format=format, balance=balance, exclude=exclude))
