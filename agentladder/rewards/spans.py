"""Span-level rewards: values on chosen parts of a response rather than on the whole of it.

A span reward marks character ranges of a response (an error, a banned
phrase, a wrong field) with a value; the RL trainer adds that value to the
advantage of the tokens inside the range, on top of the sequence advantage
every token gets. This is how reward ensembles that mark error spans give
token-level credit (Wu et al., *Fine-Grained Human Feedback Gives Better
Rewards for Language Model Training*, 2023, arXiv:2306.01693).
"""

from __future__ import annotations

import re

from agentladder.rewards.base import Reward, RewardInput, RewardOutput, Span
from agentladder.rewards.graders import values_equal
from agentladder.tasks.parsing import extract_json_object


class RegexSpanReward(Reward):
    """Every match of ``pattern`` becomes a span worth ``value`` (negative to penalise); its score is
    ``score_per_match`` times the number of matches (0 by default: a pure span signal)."""

    name = "regex_spans"

    def __init__(self, pattern: str, *, value: float = -1.0, score_per_match: float = 0.0, flags: int = 0):
        try:
            self.pattern = re.compile(pattern, flags)
        except re.error as err:
            raise ValueError(f"invalid regex {pattern!r}: {err}") from None
        self.value, self.score_per_match = value, score_per_match

    def score_one(self, item: RewardInput) -> RewardOutput:
        matches = [m for m in self.pattern.finditer(item.completion) if m.end() > m.start()]
        return RewardOutput(self.score_per_match * len(matches), [Span(m.start(), m.end(), self.value) for m in matches])


class WrongFieldSpans(Reward):
    """For JSON answers: a span on each field whose value differs from the target's (``"key": value``),
    worth ``value``; its score is the share of right fields. Credit goes to the tokens that were wrong."""

    name = "wrong_field_spans"

    def __init__(self, *, value: float = -0.5, rel: float = 1e-6):
        self.value, self.rel = value, rel

    def score_one(self, item: RewardInput) -> RewardOutput:
        obj = extract_json_object(item.completion)
        if obj is None or not isinstance(item.target, dict) or not item.target:
            return RewardOutput(0.0)
        spans, right = [], 0
        for key, want in item.target.items():
            if key in obj and values_equal(obj[key], want, self.rel):
                right += 1
                continue
            m = re.search(r'"' + re.escape(key) + r'"\s*:\s*("[^"]*"|[^,}]*)', item.completion)
            if m:
                spans.append(Span(m.start(1), m.end(1), self.value))
        return RewardOutput(right / len(item.target), spans)
