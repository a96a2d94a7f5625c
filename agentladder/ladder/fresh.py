"""Fresh data for every rung: each rung trains on prompts no earlier rung drew and no held-out split holds.

Rows are compared by their input, lower-cased with single spaces
(:func:`~agentladder.tasks.task.input_key`): a task row's ``text`` (or ``input``), the last user turn
of a conversation, a pair's or an RL prompt's prompt. The climb keeps the set of inputs used so far
(the validation, test and shifted rows, then each finished rung's rows) and hands it to the next rung
as :attr:`~agentladder.ladder.rungs.RungContext.exclude`:

- generated data is drawn from the rung's own stream (:func:`rung_seed`) past every excluded row
  (:func:`~agentladder.tasks.make.fresh_samples`): a generator's seeded stream starts with the same rows
  at any size, so a shared seed alone would hand the next rung the rows the last one trained on;
- a file's rows that are excluded are dropped (and counted in the rung's notes) before training.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from pathlib import Path
from typing import Any

from agentladder.data.io import iter_json_lines, write_jsonl
from agentladder.tasks.task import input_key


def rung_seed(ladder_seed: int, rung_name: str) -> int:
    """The seed of a rung's generated data when the rung names none: its own stream, fixed by the ladder's
    seed and the rung's name (so adding a rung leaves the others' data as it was)."""
    return int(hashlib.sha256(f"{ladder_seed}:{rung_name}".encode()).hexdigest()[:8], 16)


def row_input(row: Any) -> str | None:
    """The normalised input of one data row of any kind the rungs read, or ``None`` when it has none
    (raw text for continued pre-training)."""
    if not isinstance(row, dict):
        return None
    for key in ("text", "input"):
        if isinstance(row.get(key), str) and "messages" not in row and "prompt" not in row:
            return input_key(row[key])
    messages = row.get("prompt") if isinstance(row.get("prompt"), list) else row.get("messages")
    if not isinstance(messages, list):
        return None
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    last = users[-1] if users else None
    return input_key(last) if isinstance(last, str) else None


def file_inputs(path: str | Path) -> list[str]:
    """The normalised inputs of a data file's rows (those that have one), in order."""
    return [k for _, obj in iter_json_lines(path) if (k := row_input(obj)) is not None]


def without(path: str | Path, exclude: Collection[str], out: Path) -> tuple[str, int]:
    """``path`` with the rows whose input is in ``exclude`` left out: the file itself when none is, else the
    kept rows written to ``out``. Returns the file to train on and how many rows were dropped."""
    rows = [obj for _, obj in iter_json_lines(path)]
    kept = [obj for obj in rows if row_input(obj) not in exclude]
    if len(kept) == len(rows):
        return str(path), 0
    write_jsonl(out, kept)
    return str(out), len(rows) - len(kept)


__all__ = ["file_inputs", "row_input", "rung_seed", "without"]
