"""Shaping the RL reward before the advantage, as pure functions over ``(B, T)`` tensors.

Between scoring and the advantage estimator the trainer may

1. estimate the KL of the sampling policy to the reference per token (:func:`token_kl`);
2. put it into the reward (``kl_in: reward``): subtracted from each response's score for
   the outcome estimators (:func:`kl_penalised_scores`), or per token, on top of the score on
   the last token, for the token-level ones (:func:`kl_penalised_token_rewards`);
   :func:`kl_in_reward` picks the one the estimator reads;
3. add span rewards to the advantage of the tokens they cover (:func:`add_span_values`,
   with :func:`span_values` mapping a reward's character spans onto tokens).

DAPO's overlong punishment is applied to the scores earlier, with the rewards
(:func:`agentladder.rewards.shaping.overlong_penalty`).

Notation as in :mod:`agentladder.train.advantages`: ``B`` responses padded to ``T``
tokens, ``mask`` ``(B, T)`` 1 on trained tokens, ``scores`` ``(B,)``.
Sources are listed in ``docs/papers.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agentladder.rewards.base import Span
from agentladder.rewards.shaping import span_token_values, token_char_ranges
from agentladder.train.advantages import outcome_token_rewards
from agentladder.train.rl_losses import KLEstimator, kl_estimate


def token_kl(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor,
             kind: KLEstimator = "k3") -> torch.Tensor:
    """``(B, T)`` per-token estimate of ``KL(pi || pi_ref)`` on the trained tokens, 0 elsewhere.

    ``kl_estimate(logp, ref_logp, kind) * mask`` (k1, k2 or k3: :func:`~agentladder.train.rl_losses.kl_estimate`).
    With ``logp`` the sampling policy's log-probabilities this is the rollout's KL, which the
    reward can carry; with the current policy's (with grad) it is the KL loss term.
    """
    return kl_estimate(logp, ref_logp, kind) * mask


def mean_token_kl(kl: torch.Tensor, mask: torch.Tensor) -> float:
    """The mean of ``kl`` ``(B, T)`` over the trained tokens: ``sum(kl) / max(1, sum(mask))``."""
    return float(kl.sum() / mask.sum().clamp(min=1))


def kl_penalised_scores(scores: torch.Tensor, kl: torch.Tensor, coef: float) -> torch.Tensor:
    """Sequence-level KL in the reward, ``r_i - beta sum_t KL_it`` (``(B,)``, ``(B, T)`` -> ``(B,)``).

    For the outcome estimators (GRPO, Dr. GRPO, RLOO), which read one score per response. With k1 the
    sum is ``log pi(y|x) - log pi_ref(y|x)``, so this is ``r(x, y) - beta log(pi(y|x) / pi_ref(y|x))``:
    Ziegler et al., *Fine-Tuning Language Models from Human Preferences*, 2019, arXiv:1909.08593;
    as RLOO uses it, Ahmadian et al., *Back to Basics*, 2024, arXiv:2402.14740.
    """
    return scores - coef * kl.sum(-1)


def kl_penalised_token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor,
                               coef: float) -> torch.Tensor:
    """Per-token KL in the reward: ``r_t = -beta KL_t``, plus the score on the last trained token (``(B, T)``).

    For the token-level estimators (REINFORCE++, GAE), which credit each token with its own penalty.
    Hu, *REINFORCE++*, 2025, arXiv:2501.03262 (the token-level KL penalty); the PPO-for-RLHF
    practice of Ouyang et al., 2022, arXiv:2203.02155.
    """
    return outcome_token_rewards(scores, mask) - coef * kl


@dataclass
class ShapedRewards:
    scores: torch.Tensor
    """``(B,)`` the score each response's advantage starts from."""
    token_rewards: torch.Tensor | None = None
    """``(B, T)`` per-token rewards, when the KL went in per token (else the estimator places the score)."""


def kl_in_reward(scores: torch.Tensor, mask: torch.Tensor, kl: torch.Tensor | None, coef: float, *,
                 per_token: bool) -> ShapedRewards:
    """The rewards an advantage estimator reads, with ``coef`` x the KL ``(B, T)`` subtracted.

    ``per_token``: the estimator reads token rewards (:func:`kl_penalised_token_rewards`); otherwise
    one score per response (:func:`kl_penalised_scores`). ``kl`` ``None`` (no KL in the reward)
    leaves the scores as they are.
    """
    if kl is None:
        return ShapedRewards(scores)
    if per_token:
        return ShapedRewards(scores, kl_penalised_token_rewards(scores, kl, mask, coef))
    return ShapedRewards(kl_penalised_scores(scores, kl, coef))


def add_span_values(advantages: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``A_t + v_t`` on trained tokens: span rewards on top of the advantage every token got (``(B, T)``).

    Token-level credit from a reward that marks spans of the answer, as in Wu et al.,
    *Fine-Grained Human Feedback Gives Better Rewards for Language Model Training*, 2023, arXiv:2306.01693.
    """
    return advantages + values * mask


def span_values(tokenizer, completions: Sequence[list[int]], spans: Sequence[Sequence[Span]],
                width: int) -> torch.Tensor | None:
    """``(B, width)``: each token's summed value of the character spans it overlaps; ``None`` without spans.

    Token ``k``'s characters are its range in the decoded response
    (:func:`~agentladder.rewards.shaping.token_char_ranges`).
    """
    if not any(spans):
        return None
    out = torch.zeros(len(completions), width)
    for i, (ids, sp) in enumerate(zip(completions, spans, strict=True)):
        if sp:
            starts, ends = token_char_ranges(tokenizer, ids)
            out[i, : len(ids)] = torch.tensor(span_token_values(ends, starts, sp))
    return out


__all__ = ["ShapedRewards", "add_span_values", "kl_in_reward", "kl_penalised_scores",
           "kl_penalised_token_rewards", "mean_token_kl", "span_values", "token_kl"]
