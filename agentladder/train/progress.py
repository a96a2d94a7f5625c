"""A rich progress bar for training: step, loss, trained tokens/s, ETA."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_SHOWN = ("loss", "reward_accuracy", "margin", "reward", "kl", "clip_frac", "response_len", "groups_kept",
          "grad_norm", "lr")


class TrainProgress:
    def __init__(self, description: str, total: int, *, enabled: bool = True):
        self.enabled = enabled
        self.total = total
        self.description = description
        self._progress: Progress | None = None
        self._task = None

    def start(self, done: int = 0) -> None:
        if not self.enabled:
            return
        console = Console(file=sys.stderr)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=self.total, completed=done, stats="")

    def update(self, step: int, metrics: dict[str, float]) -> None:
        if self._progress is None:
            return
        parts = [f"{k} {metrics[k]:.4g}" for k in _SHOWN if k in metrics]
        parts += [f"{k} {v:.3g}" for k, v in metrics.items() if k.startswith("reward/")]  # RL reward components
        if "trained_tokens_per_s" in metrics:
            parts.append(f"{metrics['trained_tokens_per_s']:.0f} tok/s")
        self._progress.update(self._task, completed=step, stats=" | ".join(parts))

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
