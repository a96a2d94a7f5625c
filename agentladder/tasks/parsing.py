"""Reading a JSON object out of a model's free-text answer."""

from __future__ import annotations

import json
from typing import Any

_DECODER = json.JSONDecoder()


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text``, ignoring prose and code fences around it; ``None`` if there is none.

    Tries to decode at each ``{`` in turn, so ``Sure! {"a": 1} Hope this helps``
    and a fenced ```` ```json ```` block both give ``{"a": 1}``, and a stray
    brace before the object does not hide it.
    """
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(obj, dict):
                return obj
        start = text.find("{", start + 1)
    return None


def is_number(value: Any) -> bool:
    """A JSON number: int or float, not a bool (Python's bools are ints), and finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value \
        and value not in (float("inf"), float("-inf"))


def is_integer(value: Any) -> bool:
    """A JSON integer as JSON Schema counts it: a number with no fractional part (``10`` or ``10.0``)."""
    return is_number(value) and float(value).is_integer()
