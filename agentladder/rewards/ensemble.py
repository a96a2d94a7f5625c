"""Weighted ensembles of rewards, each component reported on its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agentladder.rewards.base import Reward, RewardInput, Span


@dataclass
class GroupScores:
    """The scores of one group of responses."""

    total: list[float]
    """Weighted sum of the components, per response."""
    components: dict[str, list[float]] = field(default_factory=dict)
    """Each component's unweighted score, per response."""
    spans: list[list[Span]] = field(default_factory=list)
    """Per response: every component's spans, their values multiplied by the component's weight."""


class WeightedEnsemble:
    """``total = sum_k w_k r_k`` over named components; every ``r_k`` is kept for the metrics."""

    def __init__(self, components: Sequence[tuple[str, Reward, float]]):
        if not components:
            raise ValueError("a reward ensemble needs at least one component")
        names = [n for n, _, _ in components]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"reward component names must be unique: {sorted(dupes)} repeated")
        self.components = list(components)

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.components]

    def score_group(self, items: Sequence[RewardInput]) -> GroupScores:
        total = [0.0] * len(items)
        spans: list[list[Span]] = [[] for _ in items]
        parts: dict[str, list[float]] = {}
        for name, reward, weight in self.components:
            outs = reward.score_group(items)
            if len(outs) != len(items):
                raise RuntimeError(f"reward {name!r} returned {len(outs)} scores for {len(items)} responses")
            parts[name] = [o.score for o in outs]
            for i, o in enumerate(outs):
                total[i] += weight * o.score
                spans[i] += [Span(s.start, s.end, weight * s.value) for s in o.spans]
        return GroupScores(total, parts, spans)
