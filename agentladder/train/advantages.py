"""Advantage estimators for the RL trainer, as pure functions over tensors.

Every estimator takes one input type, :class:`AdvantageInput`, and returns an
:class:`AdvantageOutput` of per-token advantages ``(B, T)`` (and, for GAE, the
value targets). :data:`ESTIMATORS` is the registry the RL config's
``advantage`` field selects from, so the trainer never grows an ``if/elif``.

Notation: ``B`` sampled responses, padded to ``T`` response tokens; ``mask``
``(B, T)`` is 1 on tokens the policy produced and is trained on (0 on padding
and on tool outputs); ``group`` ``(B,)`` says which prompt each response
answers (responses to one prompt form a group); ``scores`` ``(B,)`` is each
response's total reward.

Sources and departures are listed in ``docs/papers.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from agentladder.errors import ConfigError


@dataclass
class AdvantageInput:
    """What any estimator may read; each reads the fields it needs."""

    scores: torch.Tensor
    """``(B,)`` sequence reward of each response (outcome estimators)."""
    group: torch.Tensor
    """``(B,)`` long: index of the prompt each response answers."""
    mask: torch.Tensor
    """``(B, T)`` 1 on trained response tokens."""
    token_rewards: torch.Tensor | None = None
    """``(B, T)`` per-token reward (the score on the last token, minus any KL penalty); GAE and REINFORCE++."""
    values: torch.Tensor | None = None
    """``(B, T)`` the critic's value of the state before each token (GAE)."""
    gamma: float = 1.0
    lam: float = 0.95
    eps: float = 1e-6


@dataclass
class AdvantageOutput:
    advantages: torch.Tensor
    """``(B, T)``, zero where ``mask`` is 0."""
    returns: torch.Tensor | None = None
    """``(B, T)`` value targets (GAE only)."""


def _group_stats(scores: torch.Tensor, group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per response: its group's mean, unbiased std and size, each ``(B,)``."""
    n_groups = int(group.max()) + 1
    x = scores.double()
    count = torch.zeros(n_groups, dtype=torch.float64).index_add(0, group, torch.ones_like(x))
    mean = torch.zeros(n_groups, dtype=torch.float64).index_add(0, group, x) / count
    sq = torch.zeros(n_groups, dtype=torch.float64).index_add(0, group, (x - mean[group]) ** 2)
    std = (sq / (count - 1).clamp(min=1)).sqrt()
    return mean[group], std[group], count[group]


def group_normalised(scores: torch.Tensor, group: torch.Tensor, *, std: bool = True,
                     eps: float = 1e-6) -> torch.Tensor:
    """GRPO's outcome advantage ``(r_i - mean(r_g)) / (std(r_g) + eps)``, or Dr. GRPO's ``r_i - mean(r_g)``.

    ``std`` is the unbiased standard deviation over the group (as in TRL and verl).
    Shapes: ``scores``, ``group`` ``(B,)`` -> ``(B,)``.

    Shao et al., *DeepSeekMath*, 2024, arXiv:2402.03300, section 4.1.2 (outcome supervision);
    without the std: Liu et al., *Understanding R1-Zero-Like Training* (Dr. GRPO), 2025, arXiv:2503.20783, eq. 3.
    """
    mean, sd, _ = _group_stats(scores, group)
    adv = scores.double() - mean
    if std:
        adv = adv / (sd + eps)
    return adv.to(scores.dtype)


def leave_one_out(scores: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """RLOO: ``r_i - mean_{j != i} r_j`` over the other responses to the same prompt (``(B,)`` -> ``(B,)``).

    Equal to ``G / (G - 1) * (r_i - mean(r_g))``; a group of one gets 0.
    Ahmadian et al., *Back to Basics: Revisiting REINFORCE Style Optimization*, 2024, arXiv:2402.14740, eq. 8;
    Kool et al., *Buy 4 REINFORCE Samples, Get a Baseline for Free!*, 2019.
    """
    mean, _, count = _group_stats(scores, group)
    adv = (scores.double() - mean) * count / (count - 1).clamp(min=1)
    return torch.where(count > 1, adv, torch.zeros_like(adv)).to(scores.dtype)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps)`` over the masked entries of the whole batch (``(B, T)`` -> ``(B, T)``).

    The variance is the unbiased one; ``shift_mean=False`` only rescales.
    """
    m = mask.to(x.dtype)
    n = m.sum()
    mean = (x * m).sum() / n
    var = (((x - mean) ** 2) * m).sum() / (n - 1).clamp(min=1)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * m


def discounted_returns(token_rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """``G_t = sum_{k >= t} gamma^(k - t) r_k`` over the masked tokens of each row (``(B, T)`` -> ``(B, T)``).

    Masked-out tokens (tool outputs inside a multi-turn response) carry no reward and
    are skipped: the discount counts only the policy's own tokens.
    """
    out = torch.zeros_like(token_rewards)
    running = torch.zeros_like(token_rewards[:, 0])
    m = mask.to(token_rewards.dtype)
    for t in reversed(range(token_rewards.shape[1])):
        running = torch.where(m[:, t] > 0, token_rewards[:, t] + gamma * running, running)
        out[:, t] = running
    return out * m


def reinforce_pp(inp: AdvantageInput) -> AdvantageOutput:
    """REINFORCE++: token-level discounted returns of the KL-shaped reward, whitened over the whole batch.

    ``r_t = -beta KL_t (+ score on the last token)``; ``A_t = G_t``; then ``(A - mean) / std`` over every
    trained token of the batch (no critic, no per-group baseline).
    Hu, *REINFORCE++: A Simple and Efficient Approach for Aligning Large Language Models*, 2025,
    arXiv:2501.03262, eqs. 4-6.
    """
    rewards = inp.token_rewards if inp.token_rewards is not None else outcome_token_rewards(inp.scores, inp.mask)
    returns = discounted_returns(rewards, inp.mask, inp.gamma)
    return AdvantageOutput(masked_whiten(returns, inp.mask))


def gae(inp: AdvantageInput) -> AdvantageOutput:
    """Generalised advantage estimation with a critic, then whitened over the batch.

    ``delta_t = r_t + gamma V_{t+1} - V_t``; ``A_t = sum_k (gamma lambda)^k delta_{t+k}``; returns
    ``A_t + V_t`` (before whitening) are the value targets. ``V`` past the last token is 0.
    Masked-out tokens are skipped (the next *trained* token is ``t + 1``).
    Schulman et al., *High-Dimensional Continuous Control Using GAE*, 2016, arXiv:1506.02438, eq. 16;
    as used for language models by Ouyang et al., 2022, arXiv:2203.02155.
    """
    if inp.values is None:
        raise ConfigError("the gae advantage needs the critic's values (a value head)")
    rewards = inp.token_rewards if inp.token_rewards is not None else outcome_token_rewards(inp.scores, inp.mask)
    m = inp.mask.to(rewards.dtype)
    values = inp.values.to(rewards.dtype) * m
    adv = torch.zeros_like(rewards)
    last_gae = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + inp.gamma * next_value - values[:, t]
        running = delta + inp.gamma * inp.lam * last_gae
        on = m[:, t] > 0
        last_gae = torch.where(on, running, last_gae)
        next_value = torch.where(on, values[:, t], next_value)
        adv[:, t] = last_gae
    adv = adv * m
    returns = adv + values
    return AdvantageOutput(masked_whiten(adv, inp.mask), returns)


def outcome_token_rewards(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The sequence score placed on each row's last trained token (``(B,)`` -> ``(B, T)``)."""
    out = torch.zeros(mask.shape, dtype=scores.dtype)
    last = last_token_index(mask)
    out[torch.arange(mask.shape[0]), last] = scores
    return out * mask.to(scores.dtype)


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """``(B,)`` index of each row's last 1 in ``mask`` (0 for an empty row)."""
    t = torch.arange(mask.shape[1]).expand_as(mask)
    return torch.where(mask > 0, t, torch.zeros_like(t)).max(dim=1).values


def _broadcast(seq_adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return seq_adv[:, None].to(torch.float32) * mask.to(torch.float32)


def grpo(inp: AdvantageInput) -> AdvantageOutput:
    """Group-normalised outcome advantage on every token (:func:`group_normalised`)."""
    return AdvantageOutput(_broadcast(group_normalised(inp.scores, inp.group, eps=inp.eps), inp.mask))


def dr_grpo(inp: AdvantageInput) -> AdvantageOutput:
    """Group mean as baseline, no division by the std (:func:`group_normalised` with ``std=False``)."""
    return AdvantageOutput(_broadcast(group_normalised(inp.scores, inp.group, std=False), inp.mask))


def rloo(inp: AdvantageInput) -> AdvantageOutput:
    """Leave-one-out baseline on every token (:func:`leave_one_out`)."""
    return AdvantageOutput(_broadcast(leave_one_out(inp.scores, inp.group), inp.mask))


ESTIMATORS: dict[str, Callable[[AdvantageInput], AdvantageOutput]] = {
    "grpo": grpo,
    "dr_grpo": dr_grpo,
    "rloo": rloo,
    "reinforce_pp": reinforce_pp,
    "gae": gae,
}
"""The RL config's ``advantage`` field selects one of these."""

OUTCOME_ESTIMATORS = frozenset({"grpo", "dr_grpo", "rloo"})
"""Estimators that read only ``scores`` (a KL penalty in the reward is subtracted from the score)."""


def estimate_advantages(name: str, inp: AdvantageInput) -> AdvantageOutput:
    """The advantages of estimator ``name`` (the RL config's ``advantage``: a key of :data:`ESTIMATORS`).

    The trainer's one call: every estimator reads the same :class:`AdvantageInput`, so choosing
    one is a lookup, never an ``if/elif``.
    """
    if name not in ESTIMATORS:
        raise ConfigError(f"unknown advantage {name!r}: choose one of {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name](inp)


def zero_variance_groups(scores: torch.Tensor, group: torch.Tensor, atol: float = 1e-9) -> torch.Tensor:
    """``(n_groups,)`` bool: groups whose responses all got the same reward (they carry no signal).

    DAPO's dynamic sampling drops these and samples more prompts until the batch is full.
    Yu et al., *DAPO*, 2025, arXiv:2503.14476, eq. 11 (``0 < |{o_i correct}| < G``), generalised to any reward.
    """
    n_groups = int(group.max()) + 1
    x = scores.double()
    hi = torch.full((n_groups,), -float("inf"), dtype=torch.float64).scatter_reduce(0, group, x, "amax")
    lo = torch.full((n_groups,), float("inf"), dtype=torch.float64).scatter_reduce(0, group, x, "amin")
    return (hi - lo) <= atol


__all__ = [
    "ESTIMATORS",
    "OUTCOME_ESTIMATORS",
    "AdvantageInput",
    "AdvantageOutput",
    "discounted_returns",
    "estimate_advantages",
    "gae",
    "group_normalised",
    "last_token_index",
    "leave_one_out",
    "outcome_token_rewards",
    "masked_whiten",
    "reinforce_pp",
    "zero_variance_groups",
]
