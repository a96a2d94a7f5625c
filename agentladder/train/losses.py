"""Losses as pure functions over tensors.

Each function states its formula and shapes. Trainers wrap them into the
``loss_fn(model, batch)`` the shared loop calls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100
"""Label value of a token that carries no loss."""


def masked_token_nll(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over the targets that are not ``IGNORE``.

    ``loss_sum = - sum_{t: y_t != IGNORE} log softmax(z_t)[y_t]``

    Args:
        logits: ``(N, V)`` or ``(B, T, V)`` scores, already aligned so that
            ``logits[..., t, :]`` predicts ``targets[..., t]`` (i.e. shifted).
        targets: ``(N,)`` or ``(B, T)`` token ids, ``IGNORE`` where untrained.

    Returns:
        ``(loss_sum, n)``: the summed loss (fp32) and the number of trained targets.
        The mean is ``loss_sum / n``; the loop divides by the count over the whole
        global batch instead, so micro-batching does not change the gradient.
    """
    flat_logits = logits.reshape(-1, logits.shape[-1]).float()
    flat_targets = targets.reshape(-1)
    n = int((flat_targets != IGNORE).sum())
    loss_sum = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE, reduction="sum")
    return loss_sum, n
