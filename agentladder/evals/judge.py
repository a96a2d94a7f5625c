"""LLM-as-judge: rubric scores and pairwise win rates, from any provider.

The judge answers in JSON: ``{"score": 1-5, "reason": "..."}`` for a single
answer, ``{"winner": "A" | "B" | "tie", "reason": "..."}`` for a pair. A
verdict that does not parse into that shape is *unscored*, kept out of the
mean and counted separately, never taken as a low score: a judge's formatting
slip says nothing about the answer. The prompts and the verdict parsers are
model-free and live in :mod:`agentladder.rewards.judging`, shared with the
judge rewards; this module runs the judge and turns its verdicts into figures.

Pairwise comparisons judge both orders (candidate as A, then as B) and
average them, which cancels the judge's position bias (Zheng et al.,
*Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena*, 2023,
arXiv:2306.05685, section 3.4). A win counts 1, a tie 0.5, a loss 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentladder.data.schema import Message
from agentladder.models.providers import Provider
from agentladder.rewards.judging import (
    DEFAULT_RUBRIC,
    Verdict,
    pair_prompt,
    parse_preference,
    parse_verdict,
    single_prompt,
)
from agentladder.tasks.metrics import Metric, mean_metric


@dataclass
class JudgeResult:
    """Rubric scores of one model's answers."""

    verdicts: list[Verdict | None]
    raw: list[str]
    metric: Metric
    """Mean score rescaled to [0, 1] over the scored rows, with its bootstrap interval."""

    @property
    def unscored(self) -> int:
        return sum(v is None for v in self.verdicts)


@dataclass
class PairwiseResult:
    """Win rate of a candidate against a baseline, both orders judged."""

    per_row: list[float | None]
    """Per row: the mean over the parsed orders of win 1 / tie 0.5 / loss 0; ``None`` if neither parsed."""
    first: list[str | None]
    """Verdicts with the candidate as A."""
    second: list[str | None]
    """Verdicts with the candidate as B."""
    metric: Metric

    @property
    def unscored(self) -> int:
        return sum(v is None for v in self.per_row)

    @property
    def consistency(self) -> float | None:
        """Share of rows where both orders parsed and agree (a position-bias check)."""
        both = [(a, b) for a, b in zip(self.first, self.second, strict=True) if a and b]
        if not both:
            return None
        flip = {"A": "B", "B": "A", "tie": "tie"}
        return sum(a == flip[b] for a, b in both) / len(both)


class Judge:
    """A provider used as a judge, with a rubric."""

    def __init__(self, provider: Provider, rubric: str = DEFAULT_RUBRIC, *, scale: tuple[int, int] = (1, 5),
                 max_new_tokens: int = 128):
        self.provider = provider
        self.rubric = rubric
        self.scale = scale
        self.max_new_tokens = max_new_tokens

    def _ask(self, prompts: list[list[Message]]) -> list[str]:
        return self.provider.complete(prompts, max_new_tokens=self.max_new_tokens, stop_at_json=True)

    def grade(self, requests: Sequence[str], answers: Sequence[str], references: Sequence[str | None] | None = None,
              *, n_resamples: int = 1000, seed: int = 0) -> JudgeResult:
        """Rubric scores for each answer; the metric rescales the scale to [0, 1]."""
        refs = list(references) if references is not None else [None] * len(answers)
        raw = self._ask([single_prompt(self.rubric, q, a, r, self.scale)
                         for q, a, r in zip(requests, answers, refs, strict=True)])
        verdicts = [parse_verdict(t, self.scale) for t in raw]
        lo, hi = self.scale
        rescaled = [None if v is None else (v.score - lo) / (hi - lo) for v in verdicts]
        return JudgeResult(verdicts, raw, mean_metric(rescaled, n_resamples=n_resamples, seed=seed))

    def win_rate(self, requests: Sequence[str], candidate: Sequence[str], baseline: Sequence[str], *,
                 n_resamples: int = 1000, seed: int = 0) -> PairwiseResult:
        """The candidate's win rate against the baseline, each row judged in both orders and averaged."""
        n = len(requests)
        prompts = [pair_prompt(self.rubric, q, c, b) for q, c, b in zip(requests, candidate, baseline, strict=True)]
        prompts += [pair_prompt(self.rubric, q, b, c) for q, c, b in zip(requests, candidate, baseline, strict=True)]
        verdicts = [parse_preference(t) for t in self._ask(prompts)]
        first, second = verdicts[:n], verdicts[n:]
        as_a = {"A": 1.0, "B": 0.0, "tie": 0.5}
        as_b = {"A": 0.0, "B": 1.0, "tie": 0.5}
        per_row = []
        for v1, v2 in zip(first, second, strict=True):
            got = [s for s in (as_a.get(v1) if v1 else None, as_b.get(v2) if v2 else None) if s is not None]
            per_row.append(sum(got) / len(got) if got else None)
        return PairwiseResult(per_row, first, second, mean_metric(per_row, n_resamples=n_resamples, seed=seed))


__all__ = [
    "DEFAULT_RUBRIC",
    "Judge",
    "JudgeResult",
    "PairwiseResult",
    "Verdict",
    "pair_prompt",
    "parse_preference",
    "parse_verdict",
    "single_prompt",
]
