"""Verifiable graders: exact and field match, JSON schema, regex, numeric tolerance, any function, a task's scorer.

Each grades one response against the row's ``target`` (or a fixed pattern) and
returns a score in ``[0, 1]``.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from agentladder.rewards.base import Reward, RewardInput, RewardOutput, as_output
from agentladder.tasks import Sample, Task, get_task
from agentladder.tasks.parsing import extract_json_object, is_number


def _norm(text: str, case: bool, strip: bool) -> str:
    text = " ".join(text.split()) if strip else text
    return text if case else text.lower()


class ExactMatch(Reward):
    """1 when the response equals the target text (whitespace collapsed; case-insensitive unless ``case``)."""

    name = "exact_match"

    def __init__(self, *, case: bool = False, strip: bool = True):
        self.case, self.strip = case, strip

    def score_one(self, item: RewardInput) -> float:
        return float(_norm(item.completion, self.case, self.strip) == _norm(str(item.target), self.case, self.strip))


def values_equal(a: Any, b: Any, rel: float) -> bool:
    """Whether a response's JSON value equals the target's: numbers within ``rel`` (relative, and absolute
    near zero), strings ignoring case and surrounding spaces, anything else by ``==``."""
    if is_number(a) and is_number(b):
        return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=rel)
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().lower() == b.strip().lower()
    return a == b


class FieldMatch(Reward):
    """The share of ``fields`` of the response's JSON object equal to the target's (numbers within ``rel``).

    ``fields=None`` compares every field of the target. ``all_or_nothing`` gives 1 only when all match.
    A response with no JSON object scores 0.
    """

    name = "field_match"

    def __init__(self, fields: Sequence[str] | None = None, *, rel: float = 1e-6, all_or_nothing: bool = False):
        self.fields, self.rel, self.all_or_nothing = fields, rel, all_or_nothing

    def score_one(self, item: RewardInput) -> float:
        if not isinstance(item.target, dict):
            raise ValueError("field_match needs a JSON object as the row's target")
        obj = extract_json_object(item.completion)
        fields = list(self.fields or item.target)
        if obj is None or not fields:
            return 0.0
        right = sum(f in obj and values_equal(obj[f], item.target.get(f), self.rel) for f in fields)
        if self.all_or_nothing:
            return float(right == len(fields))
        return right / len(fields)


class JSONSchemaReward(Reward):
    """1 when the response holds a JSON object valid against ``schema`` (a JSON Schema dict)."""

    name = "json_schema"

    def __init__(self, schema: dict):
        try:
            import jsonschema
        except ImportError:
            raise ImportError("the json_schema reward needs the jsonschema package: pip install jsonschema") from None
        jsonschema.Draft202012Validator.check_schema(schema)
        self.validator = jsonschema.Draft202012Validator(schema)

    def score_one(self, item: RewardInput) -> float:
        obj = extract_json_object(item.completion)
        return float(obj is not None and self.validator.is_valid(obj))


class RegexReward(Reward):
    """1 when ``pattern`` matches the response (``full``: the whole stripped response), else 0.

    With ``target_group``, the named or numbered group's text must also equal the target.
    """

    name = "regex"

    def __init__(self, pattern: str, *, full: bool = False, target_group: str | int | None = None,
                 flags: int = 0):
        try:
            self.pattern = re.compile(pattern, flags)
        except re.error as err:
            raise ValueError(f"invalid regex {pattern!r}: {err}") from None
        self.full, self.target_group = full, target_group

    def score_one(self, item: RewardInput) -> float:
        text = item.completion.strip()
        m = self.pattern.fullmatch(text) if self.full else self.pattern.search(text)
        if m is None:
            return 0.0
        if self.target_group is not None:
            return float(m.group(self.target_group).strip() == str(item.target).strip())
        return 1.0


_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")


class NumericReward(Reward):
    """1 when the response's number (``which``: its ``last`` or ``first``) is within tolerance of the target.

    Tolerance: ``|x - t| <= abs_tol + rel_tol * |t|``.
    """

    name = "numeric"

    def __init__(self, *, rel_tol: float = 1e-6, abs_tol: float = 0.0, which: str = "last"):
        if which not in ("last", "first"):
            raise ValueError(f"which must be last or first, not {which!r}")
        self.rel_tol, self.abs_tol, self.which = rel_tol, abs_tol, which

    def score_one(self, item: RewardInput) -> float:
        found = _NUMBER.findall(item.completion)
        if not found:
            return 0.0
        x = float((found[-1] if self.which == "last" else found[0]).replace(",", ""))
        t = float(item.target)
        return float(abs(x - t) <= self.abs_tol + self.rel_tol * abs(t))


class PythonReward(Reward):
    """Any function: ``fn(completion, target, metadata)`` returning a number, ``{"score", "spans"}`` or a
    :class:`~agentladder.rewards.RewardOutput`; given as a callable or as ``"module:function"``."""

    name = "python"

    def __init__(self, fn: Callable[..., Any] | str):
        if isinstance(fn, str):
            module, _, attr = fn.partition(":")
            if not attr:
                raise ValueError(f"{fn!r}: write module:function")
            try:
                fn = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as err:
                raise ValueError(f"cannot load reward function {fn!r}: {err}") from None
        if not callable(fn):
            raise ValueError(f"{fn!r} is not callable")
        self.fn = fn
        self.name = getattr(fn, "__name__", "python")

    def score_one(self, item: RewardInput) -> RewardOutput:
        return as_output(self.fn(item.completion, item.target, item.metadata))


class TaskReward(Reward):
    """A task's own reward (:meth:`~agentladder.tasks.Task.reward`), e.g. medication-directions'.

    ``metric`` picks a key of the task's per-row score: a bool or number counts as is, a dict of
    bools (``fields``) as its share of true values. Without it, the task's own reward (by default
    ``(2 exact + field share + 0.5 valid) / 3.5``, the one pair building uses). The row's
    ``metadata["input"]`` is the task input.
    """

    def __init__(self, task: str | Task, metric: str | None = None):
        self.task = get_task(task)
        self.metric = metric
        self.name = f"{self.task.name}:{metric or 'default'}"

    def score_one(self, item: RewardInput) -> float:
        sample = Sample(item.id or "", item.metadata.get("input", ""), item.target, dict(item.metadata))
        return self.task.reward(sample, self.task.parse(item.completion), self.metric)
