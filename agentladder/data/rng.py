"""The process's random state (Python's, NumPy's, torch's and, where there is one, each GPU's), taken and set
whole: what a checkpoint keeps, and what a loop that samples as it appends to a file keeps beside it so that a
resumed run draws what an uninterrupted one would."""

from __future__ import annotations

import contextlib
import io
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentladder.data.io import atomic_write_bytes, atomic_write_text, decode_json_line, whole_lines


def rng_state() -> dict:
    import numpy as np
    import torch

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def rng_marked(path: str | os.PathLike, position: int, rows: int) -> Iterator[None]:
    """Around the sampling of ``rows`` rows that a loop then appends to its file, which holds ``position`` rows:
    keeps the random state before and after in ``path`` (atomically, for :func:`resume_appended`) before the
    caller writes the rows, so a kill between the two resumes from the state before them and samples them again."""
    import torch

    before = rng_state()
    yield
    buffer = io.BytesIO()
    torch.save({position: before, position + rows: rng_state()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def resume_appended(path: str | os.PathLike, marks: str | os.PathLike) -> list[tuple[int, Any]]:
    """``(line number, decoded row)`` of each row a killed loop appended to ``path``, with the random state set
    to go on from them: the state :func:`rng_marked` kept in ``marks`` for that many rows (where none was kept,
    no file or a file cut elsewhere, the caller's own seeding stands). A last line the kill cut off is cut from
    the file; so are the rows of a batch the kill stopped halfway through writing (more rows than the batch's
    start, fewer than its end), which the loop then samples again from the state the batch started with."""
    path = Path(path)
    lines = whole_lines(path)
    kept: dict[int, dict] = {}
    if Path(marks).exists():
        import torch

        kept = torch.load(marks, weights_only=False)
    if kept and min(kept) < len(lines) < max(kept):
        lines = lines[: min(kept)]
        atomic_write_text(path, "".join(text + "\n" for _, text in lines))
    if len(lines) in kept:
        set_rng_state(kept[len(lines)])
    return [(lineno, decode_json_line(path, lineno, text)) for lineno, text in lines]


__all__ = ["resume_appended", "rng_marked", "rng_state", "set_rng_state"]
