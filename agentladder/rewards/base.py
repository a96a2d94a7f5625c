"""What a reward sees and returns, and the interface every reward implements.

A reward scores the responses to one prompt together (a *group*), so a judge
can rank them against each other; most rewards score each response alone and
implement :meth:`Reward.score_one`. A score is a float; a reward may also mark
*spans* of a response (character ranges with a value), which the RL trainer
adds to the advantage of the tokens inside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentladder.data.schema import Message


@dataclass
class RewardInput:
    """One response to score, with its prompt and whatever the grader needs."""

    prompt: list[Message]
    completion: str
    target: Any = None
    """Ground truth from the RL prompt row (``RLPrompt.target``)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    truncated: bool = False
    """Whether the response was cut at the generation budget."""
    turns: list[Message] = field(default_factory=list)
    """A multi-turn response's turns (assistant, tool, assistant, ...); ``completion`` is the last assistant text."""


@dataclass(frozen=True)
class Span:
    """A character range ``[start, end)`` of a response and the value its tokens get."""

    start: int
    end: int
    value: float


@dataclass
class RewardOutput:
    score: float
    spans: list[Span] = field(default_factory=list)


class Reward:
    """Scores responses; override :meth:`score_one` or, to see a group together, :meth:`score_group`."""

    name: str = "reward"

    def score_one(self, item: RewardInput) -> float | RewardOutput:
        raise NotImplementedError(f"{type(self).__name__} implements neither score_one nor score_group")

    def score_group(self, items: Sequence[RewardInput]) -> list[RewardOutput]:
        """Scores of the responses to one prompt, in order."""
        return [as_output(self.score_one(item)) for item in items]


def as_output(value: Any) -> RewardOutput:
    """A float, a bool, a :class:`RewardOutput` or ``{"score", "spans"}`` as a :class:`RewardOutput`."""
    if isinstance(value, RewardOutput):
        return value
    if isinstance(value, dict):
        spans = [s if isinstance(s, Span) else Span(int(s[0]), int(s[1]), float(s[2])) for s in value.get("spans", [])]
        return RewardOutput(float(value.get("score", 0.0)), spans)
    if isinstance(value, (bool, int, float)):
        return RewardOutput(float(value))
    raise TypeError(f"a reward returned {type(value).__name__}; expected a number, a dict or a RewardOutput")
