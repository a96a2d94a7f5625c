"""Scoring a rung's model on one held-out split, and the paired test between two rungs on the same rows.

A split's evaluation goes to ``<rung>/eval/<split>/`` (report, samples; a rerun reuses the stored
answers). Besides the task's metrics it keeps one character per row for the headline metric (``1``
right, ``0`` wrong, ``-`` not scored), in the split file's order, so two rungs scored on the same split
can be compared row by row (:func:`paired`) without reading their samples again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentladder.evals import evaluate
from agentladder.ladder.splits import Split
from agentladder.tasks import get_task
from agentladder.tasks.metrics import paired_test


@dataclass
class SplitScore:
    metrics: dict[str, dict[str, Any]]
    """``{name: {value, ci, n}}``."""
    outcomes: str
    """One character per row for the headline metric: ``1``, ``0`` or ``-``."""
    seconds: float


def score(spec: Any, task: str, split: Split, out_dir: str, *, metric: str, shots: int, batch_size: int,
          dtype: str, max_new_tokens: int | None, seed: int, progress: bool) -> SplitScore:
    """Evaluate ``spec`` (a model spec or a provider) on ``split`` with ``task``'s prompt; see the module docstring."""
    report = evaluate([spec], task, data=split.path, shots=shots, out=out_dir, batch_size=batch_size, dtype=dtype,
                      max_new_tokens=max_new_tokens, seed=seed, progress=progress)
    result = next(iter(report.models.values()))
    the_task = get_task(task)
    outcomes = "".join(_char(the_task.row_outcome(rec["score"], metric)) for rec in result.records)
    return SplitScore({name: m.to_json() for name, m in result.metrics.items()}, outcomes,
                      result.seconds + result.load_seconds)


def _char(value: bool | None) -> str:
    return "-" if value is None else "1" if value else "0"


def paired(before: str, after: str) -> dict[str, Any] | None:
    """The paired test (McNemar's exact p, the gain with its paired-bootstrap interval) between two rungs'
    outcomes on one split; ``None`` when either has none (a task without per-row values for the metric)."""
    if not before or not after or len(before) != len(after):
        return None
    to_bool = {"1": True, "0": False, "-": None}
    test = paired_test([to_bool[c] for c in before], [to_bool[c] for c in after])
    return None if test.n == 0 else test.to_json()


__all__ = ["SplitScore", "paired", "score"]
