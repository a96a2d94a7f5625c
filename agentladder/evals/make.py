"""Generated data for a task: evaluation rows, or SFT conversations built on the evaluation's prompt."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

from agentladder.data.io import write_jsonl
from agentladder.data.schema import Conversation
from agentladder.evals.task import Sample, Task, get_task

Format = Literal["rows", "sft"]


def sft_conversations(task: str | Task, samples: Sequence[Sample]) -> list[Conversation]:
    """Each sample as ``[system, user, assistant(target)]``: exactly the zero-shot evaluation prompt, answered."""
    task = get_task(task)
    return [task.to_sft(s) for s in samples]


def make_data(task: str | Task, split: str, n: int, *, seed: int = 0, format: Format = "rows") -> list[dict[str, Any]]:
    """``n`` generated rows of ``split`` as task rows (``rows``) or SFT conversations (``sft``)."""
    task = get_task(task)
    samples = task.make(split, n, seed)
    if format == "rows":
        return [task.to_row(s) for s in samples]
    if format == "sft":
        return [c.model_dump(mode="json", exclude_none=True) for c in sft_conversations(task, samples)]
    raise ValueError(f"unknown format {format!r}: choose rows or sft")


def write_data(task: str | Task, split: str, n: int, out: str | os.PathLike, *, seed: int = 0,
               format: Format = "rows") -> int:
    """:func:`make_data` written atomically to a JSONL file; returns the number of rows."""
    return write_jsonl(out, make_data(task, split, n, seed=seed, format=format))
