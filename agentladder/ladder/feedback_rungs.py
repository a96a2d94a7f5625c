"""Rungs that learn a reward from feedback: ``kind: reward_model`` and ``kind: judge``, feeding a later RL rung.

```yaml
rungs:
  - {name: sft, kind: sft, data: {source: generate, rows: 400}}
  - name: rm                                    # a reward model from the SFT model, on expert pairs
    kind: reward_model
    data: {source: file, path: prefs.jsonl}     # or {source: pairs, rows: 200}: the start model's answers,
    train: {lora: true, validation: prefs-val.jsonl}   #  graded by the task's reward, best against worst
    accept: {metric: accuracy, min: 0.7}        # held-out pairwise accuracy it must reach
  - name: judge
    kind: judge
    start: base
    data: {source: file, path: grades.jsonl}
    train: {rubric: rubric.md, lora: true}
    accept: {metric: quadratic_kappa, min: 0.3} # and at least the untuned model's agreement
  - name: ppo
    kind: rl
    data: {source: generate, rows: 200}
    train:
      preset: ppo
      rewards: [{type: reward_model, rung: rm}]
      gold_rewards: [{type: judge, rung: judge}]   # the hacking monitor's held-out score
```

Such a rung trains from its starting model (the champion by default: the SFT model, as RLHF starts its
reward model; a LoRA run is merged first, into ``start-merged/``) with :func:`~agentladder.train.reward_model.train_reward_model` or
:func:`~agentladder.train.judge.train_judge`, then is judged by its own gate (:func:`feedback_verdict`) on
its held-out feedback rows, never on the task's validation split: it makes a reward, not a policy, so it
never becomes the champion. A later RL rung names it in ``rewards`` or ``gold_rewards`` with ``rung:``
(:func:`resolve_rewards`); a rung that failed its gate is refused there. Its registry version has the
model it started from as its parent, and the RL version lists the versions its rewards came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentladder.errors import ConfigError
from agentladder.ladder.config import ACCEPT_DEFAULTS, FEEDBACK_KINDS, Rung
from agentladder.ladder.rungs import (
    RungContext,
    Trained,
    _drawn,
    _file,
    _resumable,
    count_rows,
    preference_data,
    run_stats,
)
from agentladder.models.loading import load_model
from agentladder.models.rewardmodel import is_reward_model_folder
from agentladder.rewards.judge import JUDGE_MANIFEST
from agentladder.train.judge import JudgeConfig, train_judge
from agentladder.train.reward_model import RewardConfig, train_reward_model

LOWER_IS_BETTER = ("ece", "brier")
PREFIX = {"reward_model": "pairs", "judge": "judge"}
"""How a feedback rung's held-out figures are named in its metrics (``pairs.accuracy``, ``judge.quadratic_kappa``),
apart from any task metric."""


def _config(ctx: RungContext, cls, data: str, run: Path, model: str | None = None):
    train = dict(ctx.rung.train)
    train.setdefault("seed", ctx.ladder.seed)
    train.setdefault("progress", ctx.progress)
    return cls(**{**train, "model": model or ctx.start_model, "data": data, "out_dir": str(run)})


def merged_start(ctx: RungContext) -> str:
    """The rung's starting model as full weights: a LoRA run folder (a LoRA SFT rung) is merged once into
    ``start-merged/`` in the rung's folder, since a scalar head goes on a plain causal LM."""
    start = Path(ctx.start_model)
    if not (start / "adapter_config.json").exists():
        return ctx.start_model
    merged = ctx.dir / "start-merged"
    if not (merged / "config.json").exists():
        model, tokenizer = load_model(str(start))
        tmp = ctx.dir / ".start-merged.tmp"
        model.merge_and_unload().save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        tmp.replace(merged)
    return str(merged)


def _trained(ctx: RungContext, run: Path, config, data: str, held: dict[str, Any], artifact: str) -> Trained:
    stats = run_stats(run)
    out = Trained(model=str(run), artifact=artifact, data_path=data, examples=count_rows(data),
                  tokens=int(stats["tokens"]), train_seconds=stats["seconds"],
                  settings=json.loads(config.model_dump_json()), notes={**ctx.notes, "held_out": held})
    out.inputs = _drawn(ctx, data)
    return out


def run_reward_model(ctx: RungContext) -> Trained:
    """A reward model on the rung's pairs (a file of feedback, or the start model's graded answers)."""
    data = preference_data(ctx)
    run = ctx.dir / "run"
    config = _config(ctx, RewardConfig, data, run, merged_start(ctx))
    if not is_reward_model_folder(run):
        if _resumable(run):
            train_reward_model(out_dir=str(run), resume=True, progress=ctx.progress)
        else:
            train_reward_model(config)
    manifest = json.loads((run / "reward_model.json").read_text())
    held = (manifest.get("validation") or {}).get("pairs")
    if not held:
        raise ConfigError(f"rung {ctx.rung.name!r}: no held-out pairs to gate the reward model on; give "
                          "train.validation (a file of pairs) or a validation_share above 0")
    held = {k: v for k, v in held.items() if k != "reliability"}
    return _trained(ctx, run, config, data, held, "reward_model")


def run_judge(ctx: RungContext) -> Trained:
    """A tuned judge on the rung's graded answers and ``train.rubric``."""
    data = _file(ctx)
    run = ctx.dir / "run"
    config = _config(ctx, JudgeConfig, data, run)
    if not (run / JUDGE_MANIFEST).exists():
        train_judge(config, resume=(run / "judge_config.json").exists())
    agreement = json.loads((run / JUDGE_MANIFEST).read_text()).get("agreement") or {}
    if not agreement.get("tuned"):
        raise ConfigError(f"rung {ctx.rung.name!r}: no held-out grades to gate the judge on; give train.validation "
                          "(a file of graded answers) or a validation_share above 0")
    return _trained(ctx, run, config, data, agreement, "judge")


def _figures(kind: str, held: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The held-out figures as rung metrics (``{name: {value, n}}``)."""
    if kind == "reward_model":
        n = held.get("pairs")
        return {f"pairs.{k}": {"value": v, "n": n} for k, v in held.items() if k != "pairs"}
    out = {}
    for who, prefix in (("tuned", "judge"), ("untuned", "untuned")):
        f = held.get(who) or {}
        out.update({f"{prefix}.{k}": {"value": v, "n": f.get("rows")} for k, v in f.items() if k != "rows"})
    return out


def feedback_verdict(rung: Rung, held: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``(metrics, verdict)`` of a reward-model or judge rung: its held-out figures, and whether its gate
    (:class:`~agentladder.ladder.config.Accept`) accepts it. The verdict never keeps it as the champion."""
    metric, least = ACCEPT_DEFAULTS[rung.kind]
    if rung.accept is not None:
        metric = rung.accept.metric or metric
        least = least if rung.accept.min is None else rung.accept.min
    metrics = _figures(rung.kind, held)
    name = f"{PREFIX[rung.kind]}.{metric}"
    if name not in metrics:
        known = ", ".join(k.split(".", 1)[1] for k in metrics if k.startswith(PREFIX[rung.kind] + "."))
        raise ConfigError(f"rung {rung.name!r}: accept.metric {metric!r} is not one of its figures ({known})")
    value = metrics[name]["value"]
    lower = metric in LOWER_IS_BETTER
    passed = value is not None and (value <= least if lower else value >= least)
    reason = f"held-out {metric} {'n/a' if value is None else format(value, '.3f')} {'<=' if lower else '>='} " \
             f"{least:g}: {'yes' if passed else 'no'}"
    untuned = metrics.get(f"untuned.{metric}", {}).get("value")
    if rung.kind == "judge" and untuned is not None and value is not None:
        beats = value <= untuned if lower else value >= untuned
        passed = passed and beats
        reason += f"; untuned {untuned:.3f}, {'no worse' if beats else 'better than the tuned judge'}"
    verdict = {"kept": False, "accepted": passed, "stop": False, "target_met": False, "gain": None,
               "reason": f"{'accepted' if passed else 'rejected'} ({reason})"}
    return metrics, verdict


def resolve_rewards(ctx: RungContext) -> dict[str, Any]:
    """The RL rung's ``rewards`` / ``gold_rewards`` with each ``rung: NAME`` entry pointing at that rung's folder
    (``path`` of a reward model, ``provider`` of a judge); ``{}`` when none names a rung. The versions the
    rewards came from go into the rung's notes (``rewards_from``)."""
    out: dict[str, Any] = {}
    sources: list[str] = []
    for key in ("rewards", "gold_rewards"):
        entries = ctx.rung.train.get(key)
        if not isinstance(entries, list) or not any(isinstance(e, dict) and "rung" in e for e in entries):
            continue
        resolved = []
        for entry in entries:
            if not (isinstance(entry, dict) and "rung" in entry):
                resolved.append(entry)
                continue
            entry = dict(entry)
            name = entry.pop("rung")
            made = ctx.learned.get(name)
            if made is None:
                raise ConfigError(f"rung {ctx.rung.name!r}: {key} names rung {name!r}, which has not run in this climb")
            if not made["accepted"]:
                raise ConfigError(f"rung {ctx.rung.name!r}: {key} names rung {name!r}, which its gate rejected "
                                  f"({made['reason']}); retrain it or leave it out")
            entry["path" if made["kind"] == "reward_model" else "provider"] = made["model"]
            resolved.append(entry)
            sources.append(made["version"])
        out[key] = resolved
    if sources:
        ctx.notes["rewards_from"] = list(dict.fromkeys(sources))
    return out


FEEDBACK_RUNNERS = {"reward_model": run_reward_model, "judge": run_judge}

__all__ = ["FEEDBACK_KINDS", "FEEDBACK_RUNNERS", "feedback_verdict", "resolve_rewards", "run_judge",
           "run_reward_model"]
