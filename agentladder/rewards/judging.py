"""What an LLM judge is asked and how its verdict is read: prompts and parsers, no model.

The judge answers in JSON: ``{"score": 1-5, "reason": "..."}`` for a single
answer, ``{"winner": "A" | "B" | "tie", "reason": "..."}`` for a pair, and
``{"ranking": [...], "reason": "..."}`` for a group. A verdict that does not
parse into that shape reads as ``None`` (*unscored*), never as a low score: a
judge's formatting slip says nothing about the answer.

The judge rewards (:mod:`agentladder.rewards.judge`) and the evaluation's
:class:`~agentladder.evals.judge.Judge` (rubric scores and win rates) both build
their prompts and read their verdicts here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentladder.data.schema import Message
from agentladder.tasks.parsing import extract_json_object, is_number

DEFAULT_RUBRIC = (
    "The answer does what the request asks, is correct and complete, follows any required format, "
    "and adds nothing false."
)

_SINGLE_SYSTEM = """\
You are a strict evaluator. Grade the answer against the rubric on a scale from {lo} to {hi} \
({lo} = fails the rubric, {hi} = fully meets it). Reply with only a JSON object: \
{{"score": <integer {lo}-{hi}>, "reason": "<one sentence>"}}"""

_PAIR_SYSTEM = """\
You are a strict evaluator. Compare two answers to the same request against the rubric. \
Reply with only a JSON object: {"winner": "A" or "B" or "tie", "reason": "<one sentence>"}"""

_GROUP_SYSTEM = """\
You are a strict evaluator. Several answers to the same request follow, numbered 1 to {n}. \
Rank them from best to worst against the rubric. Reply with only a JSON object: \
{{"ranking": [<answer numbers, best first, each number once>], "reason": "<one sentence>"}}"""


@dataclass(frozen=True)
class Verdict:
    """A parsed judgement of one answer."""

    score: float
    reason: str = ""


def parse_verdict(text: str, scale: tuple[int, int] = (1, 5)) -> Verdict | None:
    """``{"score": n, "reason": ...}`` with ``n`` a number on the scale; anything else is ``None`` (unscored)."""
    obj = extract_json_object(text)
    if obj is None or not is_number(obj.get("score")):
        return None
    score = float(obj["score"])
    if not scale[0] <= score <= scale[1]:
        return None
    reason = obj.get("reason", "")
    return Verdict(score, reason if isinstance(reason, str) else str(reason))


def parse_preference(text: str) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` from ``{"winner": ...}``; ``None`` for a malformed verdict."""
    obj = extract_json_object(text)
    winner = obj.get("winner") if obj else None
    if not isinstance(winner, str):
        return None
    winner = winner.strip().strip(".").lower()
    return {"a": "A", "b": "B", "tie": "tie", "draw": "tie"}.get(winner)


def parse_ranking(text: str, n: int) -> list[int] | None:
    """0-based answer indices best first, from ``{"ranking": [...]}`` (1-based); ``None`` unless a permutation."""
    obj = extract_json_object(text)
    ranking = obj.get("ranking") if obj else None
    if not isinstance(ranking, list) or len(ranking) != n:
        return None
    try:
        idx = [int(r) - 1 for r in ranking]
    except (TypeError, ValueError):
        return None
    return idx if sorted(idx) == list(range(n)) else None


def single_prompt(rubric: str, request: str, answer: str, reference: str | None = None,
                  scale: tuple[int, int] = (1, 5)) -> list[Message]:
    """Messages asking the judge to grade one answer."""
    body = f"Rubric: {rubric}\n\nRequest:\n{request}\n\n"
    if reference is not None:
        body += f"Reference answer:\n{reference}\n\n"
    body += f"Answer to grade:\n{answer}"
    return [Message(role="system", content=_SINGLE_SYSTEM.format(lo=scale[0], hi=scale[1])),
            Message(role="user", content=body)]


def pair_prompt(rubric: str, request: str, answer_a: str, answer_b: str) -> list[Message]:
    """Messages asking the judge which of two answers is better."""
    body = f"Rubric: {rubric}\n\nRequest:\n{request}\n\nAnswer A:\n{answer_a}\n\nAnswer B:\n{answer_b}"
    return [Message(role="system", content=_PAIR_SYSTEM), Message(role="user", content=body)]


def group_prompt(rubric: str, request: str, answers: Sequence[str], reference: str | None = None) -> list[Message]:
    """Messages asking a judge to rank ``answers`` against each other."""
    body = f"Rubric: {rubric}\n\nRequest:\n{request}\n\n"
    if reference is not None:
        body += f"Reference answer:\n{reference}\n\n"
    body += "\n\n".join(f"Answer {i + 1}:\n{a}" for i, a in enumerate(answers))
    return [Message(role="system", content=_GROUP_SYSTEM.format(n=len(answers))), Message(role="user", content=body)]


__all__ = [
    "DEFAULT_RUBRIC",
    "Verdict",
    "group_prompt",
    "pair_prompt",
    "parse_preference",
    "parse_ranking",
    "parse_verdict",
    "single_prompt",
]
