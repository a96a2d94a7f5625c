"""RL policy losses, KL estimators and loss aggregation, as pure functions over ``(B, T)`` tensors.

Notation: ``logp`` ``(B, T)`` the current policy's log-probability of each
sampled response token (with grad); ``old_logp`` the same under the policy that
sampled it (no grad); ``ref_logp`` under the reference policy; ``adv`` ``(B, T)``
the advantage; ``mask`` ``(B, T)`` 1 on trained tokens. Every function returns
a per-token loss matrix, and :func:`aggregate` turns it into the ``(sum, units)``
pair the shared loop divides (so a step's loss is exact whatever the split into
micro-batches).

Sources and departures are listed in ``docs/papers.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from agentladder.errors import ConfigError

KLEstimator = Literal["k1", "k2", "k3"]
Aggregation = Literal["token_mean", "seq_mean_token_mean", "seq_sum_norm"]
RatioLevel = Literal["token", "sequence"]


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: KLEstimator = "k3") -> torch.Tensor:
    """Per-token estimate of ``KL(pi || pi_ref)`` from samples of ``pi`` (``(B, T)`` -> ``(B, T)``).

    With ``d = log pi_ref - log pi``:

    - ``k1 = -d`` (unbiased, high variance, can be negative);
    - ``k2 = d^2 / 2`` (biased, low variance; its gradient is the true KL's gradient in expectation);
    - ``k3 = exp(d) - d - 1`` (unbiased, always >= 0; GRPO's choice).

    ``d`` is clamped to ``[-20, 20]`` before the exponential, so one outlier token cannot overflow.
    Schulman, *Approximating KL Divergence*, 2020 (joschu.net/blog/kl-approx.html);
    k3 as in Shao et al., *DeepSeekMath*, 2024, arXiv:2402.03300, eq. 4.
    """
    d = ref_logp - logp
    if kind == "k1":
        return -d
    if kind == "k2":
        return 0.5 * d**2
    if kind == "k3":
        d = d.clamp(-20.0, 20.0)
        return torch.exp(d) - d - 1
    raise ConfigError(f"unknown KL estimator {kind!r}: choose k1, k2 or k3")


def log_ratio(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor,
              level: RatioLevel = "token") -> torch.Tensor:
    """Log importance ratio per token, ``(B, T)``.

    - ``token``: ``log pi(y_t) - log pi_old(y_t)`` (PPO, GRPO, DAPO).
    - ``sequence`` (GSPO): every token of response ``i`` carries
      ``log s_i = (1 / |y_i|) sum_t (log pi(y_t) - log pi_old(y_t))``, the log of the *geometric mean* of
      its token ratios, with the gradient of GSPO-token (Zheng et al. eq. 13):
      ``log s_i,t = sg[log s_i] + log pi(y_t) - sg[log pi(y_t)]``. Its value is ``log s_i`` on every
      token; when the advantage is the same on every token of a response (no span rewards), the
      gradient of the token-mean loss equals GSPO's sequence-level gradient (eq. 10).

    Zheng et al., *Group Sequence Policy Optimization*, 2025, arXiv:2507.18071, eqs. 7, 13.
    """
    token = (logp - old_logp) * mask
    if level == "token":
        return token
    if level != "sequence":
        raise ConfigError(f"unknown ratio level {level!r}: choose token or sequence")
    n = mask.sum(-1).clamp(min=1)
    seq = (token.sum(-1) / n).detach()  # (B,)
    return (seq[:, None] + logp - logp.detach()) * mask


@dataclass
class PolicyLoss:
    loss: torch.Tensor
    """``(B, T)`` per-token loss (0 where ``mask`` is 0)."""
    ratio: torch.Tensor
    """``(B, T)`` importance ratio (detached)."""
    clipped_low: torch.Tensor
    """``(B, T)`` bool: the ratio hit ``1 - clip_low`` with a negative advantage (the gradient is cut)."""
    clipped_high: torch.Tensor
    """``(B, T)`` bool: the ratio hit ``1 + clip_high`` with a positive advantage."""
    dual_clipped: torch.Tensor
    """``(B, T)`` bool: dual clip bounded a negative-advantage token."""


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, *,
                        clip_low: float = 0.2, clip_high: float = 0.2, dual_clip: float | None = None,
                        level: RatioLevel = "token") -> PolicyLoss:
    """PPO's clipped surrogate with separate low and high ranges (clip-higher) and an optional dual clip.

    ``r = exp(log_ratio)`` (:func:`log_ratio`, per token or per sequence);
    ``L = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)``; with dual clip ``c > 1``,
    tokens with ``A < 0`` get ``min(L, -c A)``, bounding how far a very large ratio can push.

    Schulman et al., *Proximal Policy Optimization Algorithms*, 2017, arXiv:1707.06347, eq. 7;
    clip-higher: Yu et al., *DAPO*, 2025, arXiv:2503.14476, eq. 10;
    dual clip: Ye et al., *Mastering Complex Control in MOBA Games with Deep RL*, 2020, arXiv:1912.09729, eq. 5.
    """
    lr = log_ratio(logp, old_logp, mask, level).clamp(max=20.0)
    ratio = torch.exp(lr)
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1 - clip_low, 1 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    dual = torch.zeros_like(mask, dtype=torch.bool)
    if dual_clip is not None:
        if dual_clip <= 1:
            raise ConfigError(f"dual_clip must be > 1, got {dual_clip}")
        bound = -adv * dual_clip
        dual = (adv < 0) & (loss > bound)
        loss = torch.where(adv < 0, torch.minimum(loss, bound), loss)
    on = mask > 0
    r = ratio.detach()
    return PolicyLoss(
        loss=loss * mask,
        ratio=r * mask,
        clipped_low=on & (adv < 0) & (r < 1 - clip_low),
        clipped_high=on & (adv > 0) & (r > 1 + clip_high),
        dual_clipped=on & dual,
    )


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float | None = 0.2) -> torch.Tensor:
    """PPO's clipped value loss per token: ``0.5 max((V - R)^2, (clip(V, V_old +- eps) - R)^2)`` (``(B, T)``).

    Schulman et al. 2017 (above); value clipping as in OpenAI baselines' ``ppo2``.
    """
    err = (values - returns) ** 2
    if clip is not None:
        clipped = old_values + (values - old_values).clamp(-clip, clip)
        err = torch.maximum(err, (clipped - returns) ** 2)
    return 0.5 * err * mask


def aggregate(loss: torch.Tensor, mask: torch.Tensor, mode: Aggregation = "token_mean",
              norm_length: int | None = None) -> tuple[torch.Tensor, float]:
    """``(loss_sum, units)``: the loop divides the sum over a step by the units over the step.

    - ``token_mean``: every trained token of the step weighs the same
      (``sum_it L_it / sum_it 1``; DAPO eq. 12, TRL's ``dapo``/``bnpo`` loss type);
    - ``seq_mean_token_mean``: the mean over responses of each response's token mean
      (GRPO eq. 3, GSPO eq. 5);
    - ``seq_sum_norm``: each response's token *sum* divided by the constant ``norm_length``
      (the generation budget), then the mean over responses (Dr. GRPO eq. 3; TRL's ``dr_grpo``).

    Shapes: ``loss``, ``mask`` ``(B, T)``. Rows with no trained token count as no unit.
    """
    m = mask.to(loss.dtype)
    tokens = m.sum(-1)  # (B,)
    if mode == "token_mean":
        return (loss * m).sum(), float(tokens.sum())
    has = tokens > 0
    if mode == "seq_mean_token_mean":
        return ((loss * m).sum(-1) / tokens.clamp(min=1)).sum(), float(has.sum())
    if mode == "seq_sum_norm":
        if not norm_length:
            raise ConfigError("seq_sum_norm needs norm_length (the generation budget)")
        return (loss * m).sum() / norm_length, float(has.sum())
    raise ConfigError(f"unknown loss aggregation {mode!r}: choose token_mean, seq_mean_token_mean or seq_sum_norm")


def aggregate_mean(loss: torch.Tensor, mask: torch.Tensor, mode: Aggregation = "token_mean",
                   norm_length: int | None = None) -> torch.Tensor:
    """The aggregated loss of one batch on its own: ``loss_sum / units``."""
    total, units = aggregate(loss, mask, mode, norm_length)
    return total / max(units, 1.0)


__all__ = [
    "Aggregation",
    "KLEstimator",
    "PolicyLoss",
    "RatioLevel",
    "aggregate",
    "aggregate_mean",
    "clipped_policy_loss",
    "kl_estimate",
    "log_ratio",
    "value_loss",
]
