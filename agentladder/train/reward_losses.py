"""The reward model's losses, as pure functions over tensors.

- :func:`bradley_terry_loss`: pairs. Under the Bradley-Terry model the probability that the chosen
  answer beats the rejected one is ``sigma(r_c - r_r)``; the loss is its negative log-likelihood,
  ``-log sigma(r_c - r_r - m)`` with an optional margin ``m`` per pair (Ouyang et al. 2022, eq. 1;
  the margin as in Touvron et al. 2023, *Llama 2*, eq. 2, and TRL's ``RewardTrainer``).
  Its gradient with respect to ``r_c`` is ``-(1 - sigma(r_c - r_r - m))`` and the opposite for ``r_r``.
- :func:`grade_regression_loss`: graded answers, ``(r - z)^2`` where ``z`` is the grade mapped
  linearly from its scale onto ``[-1, 1]`` (:func:`grade_target`), so pairs and grades can train
  one head on one scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor,
                       margin: torch.Tensor | float | None = None) -> torch.Tensor:
    """``(P,)`` per-pair loss ``-log sigma(r_c - r_r - m)`` for ``(P,)`` rewards of the chosen and rejected answers."""
    diff = chosen - rejected
    if margin is not None:
        diff = diff - margin
    return -F.logsigmoid(diff)


def grade_target(grade: torch.Tensor, scale: tuple[float, float]) -> torch.Tensor:
    """A grade on ``scale = (lo, hi)`` as ``2 (g - lo) / (hi - lo) - 1``: ``lo`` -> -1, ``hi`` -> 1."""
    lo, hi = scale
    return 2 * (grade - lo) / (hi - lo) - 1


def grade_regression_loss(reward: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(G,)`` squared error between the rewards and the grades' targets (:func:`grade_target`)."""
    return (reward - target) ** 2


__all__ = ["bradley_terry_loss", "grade_regression_loss", "grade_target"]
