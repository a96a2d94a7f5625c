"""Rewards from configuration: a list of ``{type, weight, name, ...}`` entries, as an RL config's YAML holds them.

```yaml
rewards:
  - type: task            # the task's own scorer
    task: medication-directions
    metric: exact
  - {type: regex, pattern: '^\\{.*\\}$', full: true, weight: 0.1, name: json_only}
  - {type: judge, provider: "openai:gpt-4o-mini", rubric: "Correct and concise.", weight: 0.5}
  - {type: reward_model, path: runs/rm1}   # a trained reward model, normalised by its training rewards
```

Types: ``exact``, ``field``, ``json_schema``, ``regex``, ``numeric``, ``python``,
``task``, ``judge``, ``group_judge``, ``reward_model``, ``regex_spans``, ``wrong_field_spans``. Every other
key is passed to the reward's constructor; an unknown type or key is an error that names
the entry.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from agentladder.errors import ConfigError
from agentladder.rewards.base import Reward
from agentladder.rewards.ensemble import WeightedEnsemble
from agentladder.rewards.graders import (
    ExactMatch,
    FieldMatch,
    JSONSchemaReward,
    NumericReward,
    PythonReward,
    RegexReward,
    TaskReward,
)
from agentladder.rewards.judge import GroupJudgeReward, JudgeReward
from agentladder.rewards.reward_model import RewardModelReward
from agentladder.rewards.spans import RegexSpanReward, WrongFieldSpans

REWARD_TYPES: dict[str, type[Reward]] = {
    "exact": ExactMatch,
    "field": FieldMatch,
    "json_schema": JSONSchemaReward,
    "regex": RegexReward,
    "numeric": NumericReward,
    "python": PythonReward,
    "task": TaskReward,
    "judge": JudgeReward,
    "group_judge": GroupJudgeReward,
    "reward_model": RewardModelReward,
    "regex_spans": RegexSpanReward,
    "wrong_field_spans": WrongFieldSpans,
}


def build_reward(spec: Mapping[str, Any], where: str = "rewards[0]") -> tuple[str, Reward, float]:
    """``(name, reward, weight)`` from one config entry; errors name ``where``."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping with a 'type', got {type(spec).__name__}")
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in REWARD_TYPES:
        raise ConfigError(f"{where}.type: {kind!r} is not a reward type; choose one of {', '.join(REWARD_TYPES)}")
    weight = spec.pop("weight", 1.0)
    if not isinstance(weight, (int, float)) or isinstance(weight, bool):
        raise ConfigError(f"{where}.weight: expected a number, got {weight!r}")
    name = spec.pop("name", None)
    cls = REWARD_TYPES[kind]
    params = inspect.signature(cls.__init__).parameters
    unknown = [k for k in spec if k not in params]
    if unknown:
        allowed = [p for p in params if p != "self"]
        raise ConfigError(f"{where}: {kind} takes {', '.join(allowed) or 'no options'}, not {', '.join(unknown)}")
    try:
        reward = cls(**spec)
    except (TypeError, ValueError, ImportError) as err:
        raise ConfigError(f"{where} ({kind}): {err}") from None
    return str(name or (reward.name if kind == "task" else kind)), reward, float(weight)


def build_rewards(specs: Sequence[Mapping[str, Any]], *, source: str = "rewards") -> WeightedEnsemble:
    """A :class:`WeightedEnsemble` from config entries."""
    if not specs:
        raise ConfigError(f"{source}: no rewards configured")
    return WeightedEnsemble([build_reward(s, f"{source}[{i}]") for i, s in enumerate(specs)])
