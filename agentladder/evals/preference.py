"""``agentladder eval --task preference-accuracy``: reward models side by side on held-out pairs.

Each model is a reward model folder (``agentladder train reward``). On every pair of the file it
scores the chosen and the rejected answer; the figures are the pairwise accuracy (the chosen answer
rewarded higher; a tie counts half) with its 95 % bootstrap interval, the calibration of the
Bradley-Terry probability ``sigma(r_c - r_r)`` (expected calibration error over ten confidence bins,
Brier score), and the mean margin (:func:`agentladder.rewards.preference_figures`). The report is
``report.json`` and ``report.md`` in ``out``, with every pair's two rewards in ``scores.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentladder.data.feedback import load_feedback
from agentladder.data.io import atomic_write_text
from agentladder.data.schema import PreferencePair
from agentladder.errors import ConfigError
from agentladder.models.rewardmodel import RewardModel, is_reward_model_folder
from agentladder.rewards.reward_model import preference_figures
from agentladder.tasks.metrics import mean_metric

TASK = "preference-accuracy"


def preference_accuracy(models: Sequence[str], data: str | os.PathLike, *, out: str | os.PathLike | None = None,
                        limit: int | None = None, n_resamples: int = 1000, batch_size: int = 8) -> dict[str, Any]:
    """``{model: figures}`` on the pairs of ``data`` (see the module docstring); written to ``out`` when given."""
    for m in models:
        if not is_reward_model_folder(m):
            raise ConfigError(f"--model {m}: not a reward model folder (no reward_model.json); "
                              f"{TASK} scores models written by `agentladder train reward`")
    pairs = [p for p in load_feedback(data, kinds=("pairs",)) if isinstance(p, PreferencePair)][:limit]
    report: dict[str, Any] = {"task": TASK, "data": str(data), "pairs": len(pairs), "models": {}}
    scores: dict[str, list[tuple[float, float]]] = {}
    for m in models:
        rm = RewardModel.load(m, batch_size=batch_size)
        c = rm.score([p.prompt for p in pairs], [p.chosen for p in pairs])
        r = rm.score([p.prompt for p in pairs], [p.rejected for p in pairs])
        figures = preference_figures(c, r)
        right = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(c, r, strict=True)]
        figures["accuracy_ci"] = mean_metric(right, n_resamples=n_resamples).to_json()["ci"]
        report["models"][m] = figures
        scores[m] = [(float(a), float(b)) for a, b in zip(c, r, strict=True)]
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "report.json", json.dumps(report, indent=2) + "\n")
        atomic_write_text(folder / "report.md", table(report) + "\n")
        lines = [json.dumps({"id": p.id, "rewards": {m: list(scores[m][i]) for m in models}})
                 for i, p in enumerate(pairs)]
        atomic_write_text(folder / "scores.jsonl", "".join(line + "\n" for line in lines))
    return report


def table(report: dict[str, Any]) -> str:
    """The report as a Markdown table, one row per model."""
    rows = [f"Pairwise accuracy on {report['pairs']} pairs of {report['data']}", "",
            "| reward model | accuracy [95% CI] | ECE | Brier | mean margin |", "| --- | --- | --- | --- | --- |"]
    for m, f in report["models"].items():
        lo, hi = f["accuracy_ci"]
        rows.append(f"| {m} | {f['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | {f['ece']:.3f} | {f['brier']:.3f} | "
                    f"{f['mean_margin']:.3f} |")
    return "\n".join(rows)


__all__ = ["TASK", "preference_accuracy", "table"]
