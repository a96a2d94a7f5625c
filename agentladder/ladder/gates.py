"""The gate: whether a rung is kept, and whether the climb ends there. Pure functions over metric values.

A rung is compared with the *champion*, the best model kept so far (the first rung, usually the
baseline, is kept as it is). With ``gain = value - champion`` (negated when lower is better):

- kept when ``gain >= min_gain``, or when the rung reaches the target and ``gain > 0``, and no guard
  metric worsens by more than its allowance;
- with ``max_p``, a rung kept so far must also be a significant step up: McNemar's paired p against the
  champion on the deciding split's rows below ``max_p`` (rows won and lost count, not only the net gain);
- a rung gated on its control (``control: {gate: true}``) must also beat the control's value by
  ``min_gain``, and by more than nothing: a tie says the rung's gain is what the control already gets;
- the climb ends when the champion after this rung reaches the target, or, with ``stop_on_stall``,
  at the first rung that is not kept.

A rung that is not kept stays in the registry (status ``rejected``); the next rung starts from the
champion, so the kept models' headline metric never goes down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from agentladder.errors import ConfigError
from agentladder.ladder.config import Gate

EPS = 1e-12
"""Ties within float noise count as equal."""


@dataclass(frozen=True)
class Verdict:
    kept: bool
    """The rung becomes the champion."""
    target_met: bool
    """The champion after this rung reaches the target."""
    stop: bool
    """The climb ends here."""
    gain: float | None
    """Over the champion before this rung (signed so that positive is better); ``None`` for the first rung."""
    reason: str
    p: float | None = None
    """McNemar's p against the champion that ``gate.max_p`` judged (``None`` where no paired test was asked)."""

    def to_json(self) -> dict:
        return asdict(self)


def metric_value(metrics: Mapping[str, float | None], name: str) -> float:
    if name not in metrics:
        raise ConfigError(f"gate metric {name!r} is not among the task's metrics ({', '.join(sorted(metrics))})")
    value = metrics[name]
    if value is None:
        raise ConfigError(f"gate metric {name!r} has no value (it applied to no row)")
    return float(value)


def reaches(value: float, target: float, higher_is_better: bool = True) -> bool:
    return value >= target - EPS if higher_is_better else value <= target + EPS


def judge(gate: Gate, metric: str, metrics: Mapping[str, float | None],
          champion: Mapping[str, float | None] | None, *, min_gain: float | None = None,
          control: Mapping[str, float | None] | None = None,
          paired: Mapping[str, Any] | None = None) -> Verdict:
    """The verdict on a rung with ``metrics``, against the ``champion``'s metrics (``None`` for the first rung)
    and, when given, its ``control``'s metrics on the same split. ``paired`` is the rung's paired test against
    the champion on the same rows (``{p, gained, lost}``), which ``gate.max_p`` needs."""
    sign = 1.0 if gate.higher_is_better else -1.0
    value = metric_value(metrics, metric)
    need = gate.min_gain if min_gain is None else min_gain
    at_target = reaches(value, gate.target, gate.higher_is_better)
    p: float | None = None
    if champion is None:
        kept, gain = True, None
        reason = f"first rung: {metric} {value:.3f}"
    else:
        gain = sign * (value - metric_value(champion, metric))
        broken = _broken_guards(gate, metrics, champion)
        if broken:
            kept, reason = False, "guard: " + "; ".join(broken)
        elif gain >= need - EPS:
            kept, reason = True, f"{metric} {value:.3f}, gain {gain:+.3f} >= {need:.3f}"
        elif at_target and gain > EPS:
            kept, reason = True, f"{metric} {value:.3f} reaches the target (gain {gain:+.3f})"
        else:
            kept, reason = False, f"{metric} {value:.3f}, gain {gain:+.3f} < {need:.3f}"
        if kept and gate.max_p is not None:
            if paired is None:
                raise ConfigError(f"gate max_p needs the rung's paired test against the champion, and {metric!r} "
                                  "has no pass or fail per row here; leave max_p out for this task")
            p = float(paired["p"])
            counts = f"p {p:.3g} (+{paired['gained']} -{paired['lost']}) against the champion"
            if p < gate.max_p:
                reason += f"; paired test {counts} < {gate.max_p:g}"
            else:
                kept = False
                reason += f"; but paired test {counts}, not below {gate.max_p:g}: not a significant step"
        if kept and control is not None:
            over = sign * (value - metric_value(control, metric))
            if over < need - EPS or over <= EPS:
                kept = False
                reason += (f"; but its control scores {metric_value(control, metric):.3f} (the rung {over:+.3f}): "
                           "the control's training alone gets this far")
            else:
                reason += f"; {over:+.3f} over its control"
    champion_value = value if kept else metric_value(champion or {}, metric)
    target_met = reaches(champion_value, gate.target, gate.higher_is_better)
    stop = target_met or (not kept and gate.stop_on_stall)
    if target_met:
        reason += f"; target {gate.target:g} met"
    elif stop:
        reason += "; stop_on_stall ends the climb"
    return Verdict(kept=kept, target_met=target_met, stop=stop, gain=gain, reason=reason, p=p)


def _broken_guards(gate: Gate, metrics: Mapping[str, float | None], champion: Mapping[str, float | None]) -> list[str]:
    out = []
    for guard in gate.guards:
        new, old = metrics.get(guard.metric), champion.get(guard.metric)
        if guard.metric not in metrics:
            raise ConfigError(f"guard metric {guard.metric!r} is not among the task's metrics ({', '.join(sorted(metrics))})")
        if new is None or old is None:
            continue  # applies to no row on one side: nothing to compare
        drop = (old - new) if guard.higher_is_better else (new - old)
        if drop > guard.max_drop + EPS:
            out.append(f"{guard.metric} {old:.3f} -> {new:.3f} worsens by {drop:.3f} > {guard.max_drop:g}")
    return out


__all__ = ["Verdict", "judge", "metric_value", "reaches"]
