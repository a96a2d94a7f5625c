"""LLM judges as rewards: a rubric score per response, and a group judge that ranks a group's responses.

Both ask any provider (``openai:MODEL@URL``, a local model spec, or a
:class:`~agentladder.models.providers.Provider`) for a structured verdict in JSON.
A verdict that does not parse gives ``unscored`` (a neutral value), never a
crash and never a silent 0 that the policy would learn from. The prompts and the
verdict parsers are in :mod:`agentladder.rewards.judging`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentladder.models.providers import make_provider
from agentladder.rewards.base import Reward, RewardInput, RewardOutput
from agentladder.rewards.judging import (
    DEFAULT_RUBRIC,
    group_prompt,
    parse_ranking,
    parse_verdict,
    single_prompt,
)

JUDGE_MANIFEST = "judge.json"
"""What a tuned judge's folder holds beside the model (``agentladder train judge``): its rubric, scale, agreement."""


def read_judge(folder: Any) -> dict[str, Any] | None:
    """A tuned judge folder's ``judge.json`` (rubric, scale, agreement), or ``None`` for anything else."""
    path = Path(folder) / JUDGE_MANIFEST if isinstance(folder, (str, Path)) else None
    return json.loads(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else None


def _request(item: RewardInput) -> str:
    return next((m.content or "" for m in reversed(item.prompt) if m.role == "user"), "")


class JudgeReward(Reward):
    """Rubric score from an LLM judge, mapped from ``scale`` to ``[0, 1]``.

    The target, when the row has one, is shown as the reference answer. Every response of a
    group is judged in one batched provider call. A tuned judge's folder (``agentladder train judge``)
    brings its own rubric and scale, used when none is given here.
    """

    name = "judge"

    def __init__(self, provider, *, rubric: str | None = None, scale: tuple[int, int] | None = None,
                 unscored: float = 0.5, max_new_tokens: int = 128):
        tuned = read_judge(provider) or {}
        self.provider = make_provider(provider)
        self.rubric = rubric or tuned.get("rubric") or DEFAULT_RUBRIC
        self.scale = tuple(scale or tuned.get("scale") or (1, 5))
        self.unscored, self.max_new_tokens = unscored, max_new_tokens

    def score_group(self, items: Sequence[RewardInput]) -> list[RewardOutput]:
        prompts = [single_prompt(self.rubric, _request(it), it.completion,
                                 None if it.target is None else str(it.target), self.scale)  # type: ignore[arg-type]
                   for it in items]
        replies = self.provider.complete(prompts, max_new_tokens=self.max_new_tokens, temperature=0.0)
        lo, hi = self.scale
        out = []
        for reply in replies:
            verdict = parse_verdict(reply, self.scale)  # type: ignore[arg-type]
            out.append(RewardOutput(self.unscored if verdict is None else (verdict.score - lo) / (hi - lo)))
        return out


class GroupJudgeReward(Reward):
    """A judge that sees all responses to a prompt at once and ranks them; the best gets 1, the worst 0.

    Reward of the answer ranked ``k`` (0 = best) of ``n``: ``1 - k / (n - 1)``. A malformed ranking
    gives every answer ``unscored`` (no signal within the group). Comparing answers side by side is
    what a group-relative advantage needs, and is easier for a judge than an absolute score.
    """

    name = "group_judge"

    def __init__(self, provider, *, rubric: str = DEFAULT_RUBRIC, unscored: float = 0.5, max_new_tokens: int = 256):
        self.provider = make_provider(provider)
        self.rubric, self.unscored, self.max_new_tokens = rubric, unscored, max_new_tokens

    def score_group(self, items: Sequence[RewardInput]) -> list[RewardOutput]:
        n = len(items)
        if n == 1:
            return [RewardOutput(self.unscored)]
        first = items[0]
        prompt = group_prompt(self.rubric, _request(first), [it.completion for it in items],
                              None if first.target is None else str(first.target))
        reply = self.provider.complete([prompt], max_new_tokens=self.max_new_tokens, temperature=0.0)[0]
        ranking = parse_ranking(reply, n)
        if ranking is None:
            return [RewardOutput(self.unscored) for _ in items]
        scores = [0.0] * n
        for rank, i in enumerate(ranking):
            scores[i] = 1 - rank / (n - 1)
        return [RewardOutput(s) for s in scores]
