"""What an RL step's rollout produced: prompts, their scored response groups, and what they measured.

The trainer samples ``group_size`` responses to each prompt
(:mod:`agentladder.models.rollout`), scores each group with :func:`score_group`
(the reward ensemble, plus DAPO's overlong punishment from
:mod:`agentladder.rewards.shaping`) and, with dynamic sampling, keeps only
:func:`informative_groups` (those whose rewards differ). :func:`rollout_stats`
summarises the first round's groups as a
:class:`~agentladder.train.rl_metrics.RolloutStats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from agentladder.data.schema import Message
from agentladder.models.rollout import Completion
from agentladder.rewards.base import RewardInput, Span
from agentladder.rewards.shaping import overlong_buffer, overlong_penalty
from agentladder.train.advantages import zero_variance_groups
from agentladder.train.rl_metrics import RolloutStats


@dataclass
class PromptRow:
    id: str
    messages: list[Message]
    ids: list[int]
    target: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None
    """The reference answer's text (a task's target as the task writes it; a plain row's string target):
    what ``reference_guidance`` puts into a group that no sample answers as well."""


@dataclass
class Group:
    prompt: PromptRow
    completions: list[Completion]
    total: list[float]
    """Reward of each response (the ensemble's weighted sum, plus shaping)."""
    components: dict[str, list[float]]
    spans: list[list[Span]]
    guided: int | None = None
    """Which response is the prompt's reference answer, put in by :func:`with_reference` (None: all sampled)."""


@dataclass
class Rollout:
    """One step's rollout: the groups to train on, the first round's groups (the metrics'), the statistics."""

    kept: list[Group]
    first: list[Group]
    stats: RolloutStats


def score_group(rewards, prompt: PromptRow, completions: list[Completion], *, max_new_tokens: int,
                overlong_buffer_ratio: float | None = None, overlong_factor: float = 1.0) -> Group:
    """Score one prompt's responses with ``rewards`` (anything with ``score_group``), plus the overlong penalty.

    With ``overlong_buffer_ratio`` each response's total gets DAPO's soft punishment
    (:func:`~agentladder.rewards.shaping.overlong_penalty`), also reported as the ``overlong`` component.
    """
    items = [RewardInput(prompt.messages, c.text, prompt.target, prompt.metadata, prompt.id, c.truncated,
                         list(c.turns)) for c in completions]
    scores = rewards.score_group(items)
    total = list(scores.total)
    if overlong_buffer_ratio:
        buffer = overlong_buffer(max_new_tokens, overlong_buffer_ratio)
        lengths = torch.tensor([len(c.token_ids) for c in completions])  # (G,)
        pen = overlong_penalty(lengths, max_new_tokens, buffer, overlong_factor).tolist()
        total = [t + p for t, p in zip(total, pen, strict=True)]
        scores.components["overlong"] = pen
    return Group(prompt, completions, total, scores.components, scores.spans)


def with_reference(group: Group, reference: Group) -> Group:
    """``group`` with its lowest-scored response replaced by the reference answer, when no response scores as
    high as the reference does; otherwise ``group`` itself.

    ``reference`` is the reference answer scored alone (a group of one). Off-policy guidance: a prompt the
    policy never answers right gets one right answer in its group, with the group-relative advantage that a
    right sample would get, so a group of wrong answers teaches something instead of being dropped.
    """
    best = reference.total[0]
    if not group.completions or max(group.total) >= best:
        return group
    i = min(range(len(group.total)), key=group.total.__getitem__)

    def put(values: list, value: Any) -> list:
        return [*values[:i], value, *values[i + 1 :]]

    components = {name: put(vals, reference.components.get(name, [0.0])[0])
                  for name, vals in group.components.items()}
    spans = put(group.spans, reference.spans[0] if reference.spans else []) if group.spans else group.spans
    return Group(group.prompt, put(group.completions, reference.completions[0]), put(group.total, best),
                 components, spans, guided=i)


def _group_index(groups: Sequence[Group]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores, group)``, both ``(B,)``: every response's total and the index of its group."""
    flat = torch.tensor([t for g in groups for t in g.total])
    index = torch.arange(len(groups)).repeat_interleave(len(groups[0].completions))
    return flat, index


def informative_groups(groups: list[Group]) -> list[Group]:
    """The groups whose rewards are not all equal (DAPO's dynamic sampling keeps only these)."""
    if not groups:
        return []
    zero = zero_variance_groups(*_group_index(groups)).tolist()
    return [g for g, z in zip(groups, zero, strict=True) if not z]


def rollout_stats(first: Sequence[Group], *, kept: int, seen: int, rounds: int, gen_s: float,
                  gen_tokens: int, guided: int | None = None) -> RolloutStats:
    """The statistics of a rollout whose first round produced ``first``.

    ``kept`` groups (at most the batch) of ``seen`` sampled over ``rounds`` generation rounds; ``guided`` of
    the kept ones carry the reference answer (None: no reference guidance).
    """
    base = dict(gen_rounds=rounds, groups_kept=kept / max(1, seen), gen_s=gen_s, gen_tokens=gen_tokens,
                guided_groups=guided)
    totals = [t for g in first for t in g.total]
    if not totals:
        return RolloutStats(**base)
    t = torch.tensor(totals)  # (B,) fp32
    components = {}
    for name in first[0].components:
        vals = [v for g in first for v in g.components.get(name, [])]
        components[name] = sum(vals) / max(1, len(vals))
    lens = [len(c.token_ids) for g in first for c in g.completions]
    return RolloutStats(
        **base,
        responses=len(totals),
        reward=float(t.mean()),
        reward_std=float(t.std()) if len(totals) > 1 else 0.0,
        components=components,
        response_len=sum(lens) / len(lens),
        truncated=sum(c.truncated for g in first for c in g.completions) / len(lens),
        zero_variance_groups=float(zero_variance_groups(*_group_index(first)).float().mean()),
    )

__all__ = ["Group", "PromptRow", "Rollout", "informative_groups", "rollout_stats", "score_group", "with_reference"]
