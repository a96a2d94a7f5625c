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

from agentladder.data.io import atomic_write_bytes


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
    keeps the random state before and after in ``path`` (atomically, for :func:`resume_rng_mark`) before the
    caller writes the rows, so a kill between the two resumes from the state before them and samples them again."""
    import torch

    before = rng_state()
    yield
    buffer = io.BytesIO()
    torch.save({position: before, position + rows: rng_state()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def resume_rng_mark(path: str | os.PathLike, position: int) -> None:
    """Set the random state :func:`rng_marked` kept in ``path`` for ``position``; where none was kept (no
    file, or a file cut elsewhere) the caller's own seeding stands."""
    path = Path(path)
    if path.exists():
        import torch

        marks = torch.load(path, weights_only=False)
        if position in marks:
            set_rng_state(marks[position])


__all__ = ["resume_rng_mark", "rng_marked", "rng_state", "set_rng_state"]
