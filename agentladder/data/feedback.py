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
from collections.abc import Sequence

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


__all__ = ["FeedbackRow", "check_grade", "check_pair", "load_feedback"]
