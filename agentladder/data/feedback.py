"""Expert feedback for reward models and judges: pairs and graded answers, checked row by row.

:func:`load_feedback` reads a JSONL file whose rows are :class:`~agentladder.data.schema.PreferencePair`
(``prompt``, ``chosen``, ``rejected``; an optional ``metadata.margin`` says by how much the chosen
answer is better) or :class:`~agentladder.data.schema.GradedResponse` (``prompt``, ``completion``,
``grade``, optional ``reasons``), in any mix. Beyond the schema it refuses, with the file, line and
field, what a model cannot learn from: a pair whose two answers are the same text, a grade outside the
scale, a margin that is not a non-negative number.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from agentladder.data.io import iter_json_lines, validate_row
from agentladder.data.schema import GradedResponse, Message, PreferencePair
from agentladder.errors import DataError

FeedbackRow = PreferencePair | GradedResponse


def _text(messages: Sequence[Message]) -> str:
    return "\n".join(f"{m.role}: {m.content or ''}{m.tool_calls or ''}" for m in messages)


def check_pair(pair: PreferencePair, path: str | os.PathLike | None, line: int | None) -> PreferencePair:
    """The pair itself, or a :class:`DataError` when its answers are identical or its margin is not a number >= 0."""
    if _text(pair.chosen) == _text(pair.rejected):
        raise DataError(path, line, "rejected", "the same answer as chosen: a pair needs two different answers")
    margin = pair.metadata.get("margin")
    if margin is not None and (isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin < 0):
        raise DataError(path, line, "metadata.margin", f"expected a number >= 0, got {margin!r}")
    return pair


def check_grade(row: GradedResponse, scale: tuple[float, float], path: str | os.PathLike | None,
                line: int | None) -> GradedResponse:
    """The row itself, or a :class:`DataError` when its grade is outside ``scale``."""
    lo, hi = scale
    if not lo <= row.grade <= hi:
        raise DataError(path, line, "grade", f"{row.grade:g} is outside the scale {lo:g}-{hi:g}")
    return row


def load_feedback(path: str | os.PathLike, *, scale: tuple[float, float] = (1, 5),
                  kinds: Sequence[str] = ("pairs", "grades")) -> list[FeedbackRow]:
    """Every row of ``path`` as a checked pair or graded answer (see the module docstring).

    ``kinds`` limits what a file may hold (``pairs``, ``grades``); another kind of row is an error.
    """
    out: list[FeedbackRow] = []
    for line, obj in iter_json_lines(path):
        if isinstance(obj, dict) and "chosen" in obj:
            if "pairs" not in kinds:
                raise DataError(path, line, "chosen", f"expected a graded answer ({'/'.join(kinds)}), not a pair")
            out.append(check_pair(validate_row(PreferencePair, obj, path, line), path, line))
        elif isinstance(obj, dict) and "grade" in obj:
            if "grades" not in kinds:
                raise DataError(path, line, "grade", f"expected a pair ({'/'.join(kinds)}), not a graded answer")
            out.append(check_grade(validate_row(GradedResponse, obj, path, line), scale, path, line))
        else:
            need = " or ".join({"pairs": "a pair (prompt, chosen, rejected)",
                                "grades": "a graded answer (prompt, completion, grade)"}[k] for k in kinds)
            raise DataError(path, line, None, f"expected {need}")
    if not out:
        raise DataError(path, None, None, "no rows")
    return out




_GRADE_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:\*\*)?(\d+)(?:\*\*)?\s*[:=.)-]\s*(?:\*\*)?\s*(\S.*)$")
_NUMBERED = re.compile(r"^\s*(?:[-*]\s*)?(?:\*\*)?\d")


def load_rubric(path: str | os.PathLike, scale: tuple[int, int] = (1, 5)) -> str:
    """A rubric file as the text a judge is shown, checked line by line.

    The file is free text (what good answers do) with one line per grade of ``scale``:
    ``5: correct, specific, cited and concise`` (a list marker or bold around the number is fine).
    A line that starts with a number but is not such a line, a grade off the scale, a grade given
    twice, or a grade missing is a :class:`DataError` naming the file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(p, None, None, "no such rubric file")
    lines = p.read_text(encoding="utf-8").split("\n")  # not splitlines: U+2028 or NEL in a line do not end it
    seen: dict[int, int] = {}
    lo, hi = scale
    for i, line in enumerate(lines, start=1):
        m = _GRADE_LINE.match(line)
        if m is None:
            if _NUMBERED.match(line):
                raise DataError(p, i, "grade", f"expected 'N: what an answer of grade N does', got {line.strip()!r}")
            continue
        grade = int(m.group(1))
        if not lo <= grade <= hi:
            raise DataError(p, i, "grade", f"{grade} is outside the scale {lo}-{hi}")
        if grade in seen:
            raise DataError(p, i, "grade", f"grade {grade} is described twice (first on line {seen[grade]})")
        seen[grade] = i
    missing = [g for g in range(lo, hi + 1) if g not in seen]
    if missing:
        raise DataError(p, None, "grade", f"no line for grade {', '.join(map(str, missing))} "
                        f"(write one 'N: ...' line per grade {lo}-{hi})")
    return "\n".join(line.rstrip() for line in lines).strip()


__all__ = ["FeedbackRow", "check_grade", "check_pair", "load_feedback", "load_rubric"]
