"""RL training samples and batches: a rollout's responses as :class:`RLSample` rows, collated.

Each sampled response is an :class:`RLSample`: an
:class:`~agentladder.train.shared_prompt.Answer` (its prompt, its tokens, which of
them are trained on) plus the per-token quantities the loss reads (advantages,
the old policy's and the reference's log-probabilities, the critic's values and
returns). A micro-batch is built by the one-prompt-N-answers builder of
:mod:`agentladder.train.shared_prompt`, each prompt once for all of its
responses (:func:`group_batch`) or as padded rows (:func:`padded_rl_batch`), and
carries those quantities as ``(B, T)`` matrices aligned with its ``mask``.

:class:`RolloutBatch` is a whole step's responses before any update: the samples
and the ``(B, T)`` tensors the advantage maths reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agentladder.errors import DataError
from agentladder.models.chat import tokenize_conversation
from agentladder.rewards.base import Span
from agentladder.train.rl_rollout import Group
from agentladder.train.shared_prompt import Answer, padded_prompt_batch, shared_prompt_batch

PER_TOKEN = ("advantages", "old_logps", "ref_logps", "old_values", "returns")
"""The per-token fields of :class:`RLSample` a batch carries as ``(B, T)`` matrices when set."""


@dataclass
class RLSample(Answer):
    """One sampled response, ready to train on (``group``: which prompt of the rollout it answers)."""

    advantages: list[float] | None = None
    """Per completion token (0 where ``mask`` is 0)."""
    old_logps: list[float] | None = None
    """Per completion token: log-probability under the policy that sampled it."""
    ref_logps: list[float] | None = None
    """Per completion token, under the reference policy (only when the KL coefficient is not 0)."""
    old_values: list[float] | None = None
    returns: list[float] | None = None
    truncated: bool = False
    weight: float = 1.0
    """How many identical samples this one stands for (agent RL merges a group's identical calls): its loss,
    its loss units and its metrics count ``weight`` times."""

    @property
    def n_trained(self) -> int:
        return sum(self.mask)


def sample_from_conversation(tokenizer, conversation, group: int = 0, advantage: float | None = None) -> RLSample:
    """A multi-turn rollout (a :class:`~agentladder.data.Conversation` with tool turns) as one sample.

    The prompt is everything before the first trained assistant token; the completion is the
    rest, with mask 1 only on trained assistant turns, so tool outputs (and untrained turns)
    between them are read by the model but never trained on. ``advantage`` fills every trained
    token's advantage (an outcome reward already turned into an advantage).
    """
    row = tokenize_conversation(tokenizer, conversation)
    if 1 not in row.mask:
        raise DataError(None, None, None, "the conversation has no trained assistant token")
    p = row.mask.index(1)
    mask = row.mask[p:]
    adv = None if advantage is None else [advantage * m for m in mask]
    return RLSample(group, row.input_ids[:p], row.input_ids[p:], mask, advantages=adv)


def per_token_matrix(values: Sequence[Sequence[float]], width: int) -> torch.Tensor:
    """``(B, width)`` fp32: row ``i`` holds ``values[i]``, zero-padded."""
    out = torch.zeros(len(values), width)
    for i, v in enumerate(values):
        out[i, : len(v)] = torch.tensor(v, dtype=torch.float32)
    return out


def _rl_fields(samples: Sequence[RLSample], mask: torch.Tensor, units: str) -> dict:
    """The per-token matrices that are set, ``weights`` ``(B,)`` and ``n_units``: trained tokens or responses
    with one, each sample counted ``weight`` times."""
    weights = sample_weights(samples)
    out: dict = {"n_samples": len(samples), "weights": weights}
    for name in PER_TOKEN:
        if getattr(samples[0], name) is not None:
            out[name] = per_token_matrix([getattr(s, name) for s in samples], mask.shape[1])  # (B, T)
    has = (mask.sum(-1) > 0).float()
    out["n_units"] = float((mask.sum(-1) * weights).sum()) if units == "tokens" else float((has * weights).sum())
    return out


def sample_weights(samples: Sequence[RLSample]) -> torch.Tensor:
    """``(B,)`` fp32: each sample's :attr:`RLSample.weight`."""
    return torch.tensor([s.weight for s in samples], dtype=torch.float32)


def group_batch(samples: Sequence[RLSample], units: str = "tokens") -> dict:
    """Each group's prompt once, then its responses, in one ``(1, T)`` sequence (:func:`shared_prompt_batch`).

    ``units`` is what the loss divides by: ``tokens`` (trained tokens) or ``sequences``.
    """
    batch = shared_prompt_batch(samples)
    return {**batch, **_rl_fields(samples, batch["mask"], units)}


def padded_rl_batch(samples: Sequence[RLSample], pad_id: int, units: str = "tokens") -> dict:
    """``prompt + response`` rows, right-padded (:func:`padded_prompt_batch`): the layout for any attention."""
    batch = padded_prompt_batch(samples, pad_id)
    return {**batch, **_rl_fields(samples, batch["mask"], units)}


# -- a step's responses -------------------------------------------------------------------------
@dataclass
class RolloutBatch:
    """A step's kept responses as samples, and the ``(B, T)`` tensors the advantage maths reads."""

    samples: list[RLSample]
    scores: torch.Tensor
    """``(B,)`` each response's total reward (the ensemble's sum plus the overlong penalty)."""
    spans: list[list[Span]]
    """Per response: the character spans its reward marked."""
    mask: torch.Tensor
    """``(B, T)`` 1 on trained tokens (all 0 for a response the overlong filter dropped)."""
    old_logps: torch.Tensor
    """``(B, T)`` the sampling policy's log-probabilities."""
    group: torch.Tensor
    """``(B,)`` long: the prompt each response answers."""

    def set_per_token(self, name: str, values: torch.Tensor) -> None:
        """Hand a ``(B, T)`` matrix to the samples as their per-token field ``name`` (cut to each length)."""
        for i, s in enumerate(self.samples):
            setattr(s, name, values[i, : len(s.completion)].tolist())


def rollout_batch(groups: Sequence[Group], *, overlong_filter: bool = False) -> RolloutBatch:
    """The kept groups' responses as samples (group ``k`` is the ``k``-th prompt), and their tensors.

    With ``overlong_filter`` a response cut at the budget keeps its tokens as input but gets
    mask 0 (no loss). A batch with no trained token at all is empty: there is nothing to learn.
    """
    samples, scores, spans = [], [], []
    for g_idx, g in enumerate(groups):
        for c, score, sp in zip(g.completions, g.total, g.spans or [[]] * len(g.completions), strict=True):
            mask = [0] * len(c.mask) if (overlong_filter and c.truncated) else list(c.mask)
            samples.append(RLSample(g_idx, g.prompt.ids, c.token_ids, mask, old_logps=list(c.logprobs),
                                    truncated=c.truncated))
            scores.append(score)
            spans.append(sp)
    if sum(s.n_trained for s in samples) == 0:
        samples, scores, spans = [], [], []
    width = max([len(s.completion) for s in samples], default=1)
    return RolloutBatch(
        samples=samples,
        scores=torch.tensor(scores, dtype=torch.float32),
        spans=spans,
        mask=per_token_matrix([s.mask for s in samples], width),
        old_logps=per_token_matrix([s.old_logps for s in samples], width),
        group=torch.tensor([s.group for s in samples], dtype=torch.long),
    )


__all__ = ["RLSample", "RolloutBatch", "group_batch", "padded_rl_batch", "per_token_matrix", "rollout_batch",
           "sample_from_conversation"]
