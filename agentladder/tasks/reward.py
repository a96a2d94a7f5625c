"""How a task's per-row scores become one reward: the pure parts of :meth:`~agentladder.tasks.Task.reward`.

Pair building, RL's ``task`` reward and the ladder all call ``Task.reward``; these two
functions are what its base implementation does with the scores of one answer.
"""

from __future__ import annotations

from typing import Any

from agentladder.errors import ConfigError


def scores_reward(scores: dict[str, Any]) -> float:
    """The default task reward, one number in ``[0, 1]`` from a task's per-row scores.

    A ``reward`` entry is used as it is. Otherwise exact match counts most, then the
    share of fields right, then validity: ``(2 exact + field share + 0.5 valid) / 3.5``
    over the entries present, so an exact answer scores 1.
    """
    if "reward" in scores:
        return float(scores["reward"])
    parts: list[tuple[float, float]] = []  # (weight, value)
    if "exact" in scores:
        parts.append((2.0, float(bool(scores["exact"]))))
    if isinstance(scores.get("fields"), dict) and scores["fields"]:
        fields = scores["fields"]
        parts.append((1.0, sum(bool(v) for v in fields.values()) / len(fields)))
    if "valid" in scores:
        parts.append((0.5, float(bool(scores["valid"]))))
    if not parts:
        raise ConfigError(f"cannot read a reward from scores with keys {sorted(scores)}; "
                          "give the task a 'reward' score")
    return sum(w * v for w, v in parts) / sum(w for w, _ in parts)


def metric_value(scores: dict[str, Any], metric: str, task: str = "task") -> float:
    """One per-row score as a number: a bool or number as it is, a dict of bools as its share of true values.

    ``task`` names the task in the error raised when it has no score ``metric``.
    """
    if metric not in scores:
        raise ConfigError(f"task {task!r} scores {sorted(scores)}, not {metric!r}")
    value = scores[metric]
    if isinstance(value, dict):
        return sum(bool(v) for v in value.values()) / max(1, len(value))
    return float(value)


__all__ = ["metric_value", "scores_reward"]
