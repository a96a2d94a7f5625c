"""A trained reward model as an RL reward, and the figures that say how good a reward model is.

:class:`RewardModelReward` scores each response with a reward model folder
(:mod:`agentladder.models.rewardmodel`, written by ``agentladder train reward``). The prompt and the
response's text are rendered through the **reward model's own chat template and tokenizer**, so a
policy whose tokenizer differs still gets the right score. By default the raw reward is normalised by
the mean and standard deviation of the rewards the model gave its training answers (``normalize:
train``), so a reward of 0 is an average training answer and the KL coefficient keeps its meaning
whatever scale the head learnt; ``normalize: none`` passes the raw value; ``clip`` bounds it.

:func:`preference_figures` scores a reward model on held-out pairs: pairwise accuracy (the chosen
answer gets the higher reward), and calibration of the Bradley-Terry probability
``p = sigma(r_c - r_r)``: expected calibration error over confidence bins and the Brier score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from agentladder.data.schema import Message
from agentladder.models.rewardmodel import RewardModel
from agentladder.rewards.base import Reward, RewardInput, RewardOutput


class RewardModelReward(Reward):
    """The score of a reward model folder (see the module docstring)."""

    name = "reward_model"

    def __init__(self, path: str | RewardModel, *, normalize: Literal["train", "none"] = "train",
                 clip: float | None = None, batch_size: int = 8):
        if normalize not in ("train", "none"):
            raise ValueError(f"normalize: {normalize!r} is not train or none")
        self.model = path if isinstance(path, RewardModel) else RewardModel.load(path, batch_size=batch_size)
        self.normalize, self.clip = normalize, clip

    def score_group(self, items: Sequence[RewardInput]) -> list[RewardOutput]:
        answers = [it.turns or [Message(role="assistant", content=it.completion)] for it in items]
        scores = self.model.score([it.prompt for it in items], answers, normalize=self.normalize == "train")
        if self.clip is not None:
            scores = np.clip(scores, -self.clip, self.clip)
        return [RewardOutput(float(s)) for s in scores]


def preference_figures(chosen: Sequence[float], rejected: Sequence[float], *, bins: int = 10) -> dict[str, Any]:
    """Pairwise accuracy, calibration and margins of rewards on held-out pairs (see the module docstring).

    Ties count as half right. ``ece``: the confidence ``max(p, 1 - p)`` binned into ``bins`` equal
    bins, ``sum_b n_b / N |accuracy_b - confidence_b|``. ``brier``: the mean of ``(1 - p)^2``
    (the chosen answer is the outcome).
    """
    c, r = np.asarray(chosen, np.float64), np.asarray(rejected, np.float64)
    if len(c) == 0 or len(c) != len(r):
        raise ValueError("preference_figures needs as many chosen as rejected rewards, at least one")
    diff = c - r
    correct = np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0))
    p = 1 / (1 + np.exp(-diff))
    confidence = np.maximum(p, 1 - p)
    index = np.minimum(((confidence - 0.5) * 2 * bins).astype(int), bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        sel = index == b
        if sel.any():
            acc, conf = float(correct[sel].mean()), float(confidence[sel].mean())
            ece += sel.sum() / len(c) * abs(acc - conf)
            table.append({"bin": b, "n": int(sel.sum()), "accuracy": acc, "confidence": conf})
    return {"pairs": len(c), "accuracy": float(correct.mean()), "ece": float(ece),
            "brier": float(((1 - p) ** 2).mean()), "mean_margin": float(diff.mean()),
            "reliability": table}


__all__ = ["RewardModelReward", "preference_figures"]
