"""The rungs: each one makes (or finds) its data, trains from its starting model, and hands back what it made.

Every rung calls the project's own Python API (:func:`~agentladder.train.sft.sft`,
:func:`~agentladder.train.preference.preference`, :func:`~agentladder.train.rl.rl`,
:func:`~agentladder.evals.sampling.pairs_from_task`, :func:`~agentladder.data.distill.distill`)
and keeps what it finished in its folder, so running it again after a kill reuses the data and
resumes the training from its newest checkpoint:

```
<out_dir>/02-sft/
  data.jsonl          the rung's training data (generated, distilled or pairs)
  run/                the trainer's run folder (checkpoints, metrics.jsonl, the model)
  eval/               the evaluation on the ladder's held-out split
```
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentladder.data.distill import distill
from agentladder.data.io import (
    DataError,
    atomic_write_text,
    iter_json_lines,
    read_jsonl,
    write_jsonl,
)
from agentladder.data.schema import Conversation
from agentladder.evals.sampling import pairs_from_task
from agentladder.ladder.config import LadderConfig, Rung, trainer_class
from agentladder.models.loading import RUN_META
from agentladder.models.providers import make_provider
from agentladder.tasks import get_task, write_data
from agentladder.train.preference import preference
from agentladder.train.rl import rl
from agentladder.train.sft import sft


@dataclass
class RungContext:
    """What a rung needs to run."""

    ladder: LadderConfig
    rung: Rung
    index: int
    dir: Path
    """The rung's folder (data, run, eval)."""
    start_model: str
    """Model spec it starts from: the base, or an earlier rung's output folder."""
    progress: bool = True

    @property
    def task(self) -> str:
        """The task spec the rung's data, training and evaluation use (with the rung's instructions)."""
        return self.rung.task(self.ladder.task)

    @property
    def seed(self) -> int:
        spec = self.rung.data
        own = getattr(spec, "seed", None)
        return self.ladder.seed if own is None else own


@dataclass
class Trained:
    """What a rung made."""

    model: str
    """Spec the evaluation loads: a run folder, or the base model for a baseline."""
    artifact: str
    """``base``, ``adapter`` (LoRA folder) or ``full`` (weights)."""
    provider: Any = None
    """A provider to evaluate instead of loading ``model`` (recorded answers, in tests)."""
    data_path: str | None = None
    examples: int | None = None
    tokens: int | None = None
    train_seconds: float | None = None
    """Summed optimizer-step time of the run (kept across a resume), data making left out."""
    data_seconds: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    """The trainer settings as run."""
    notes: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[RungContext], Trained]


# -- data -----------------------------------------------------------------------------------------
def count_rows(path: str | os.PathLike) -> int:
    return sum(1 for _ in iter_json_lines(path))


def _file(ctx: RungContext) -> str:
    path = Path(ctx.rung.data.path)  # type: ignore[union-attr]
    if not path.exists():
        raise DataError(path, None, None, f"rung {ctx.rung.name!r}: no such data file")
    return str(path)


def sft_data(ctx: RungContext) -> str:
    """The SFT rung's conversations: generated from the task, a file, or distilled from a teacher."""
    spec = ctx.rung.data
    if spec.source == "file":  # type: ignore[union-attr]
        return _file(ctx)
    out = ctx.dir / "data.jsonl"
    if out.exists():
        return str(out)
    if spec.source == "generate":  # type: ignore[union-attr]
        write_data(ctx.task, spec.split, spec.rows, out, seed=ctx.seed, format="sft",  # type: ignore[union-attr]
                   balance=spec.balance)  # type: ignore[union-attr]
        return str(out)
    return _distilled(ctx, out)


def _distilled(ctx: RungContext, out: Path) -> str:
    """Teacher answers to the task's prompts; with ``keep: correct`` only those the task's reward gives full
    marks (for the built-in tasks: exact match)."""
    spec = ctx.rung.data
    task = get_task(ctx.task)
    samples = task.make(spec.split, spec.rows, ctx.seed)  # type: ignore[union-attr]
    prompts = ctx.dir / "prompts.jsonl"
    if not prompts.exists():
        write_jsonl(prompts, [task.to_sft(s) for s in samples])
    answered = ctx.dir / "distilled.jsonl"
    if not answered.exists():
        teacher = make_provider(spec.teacher, batch_size=spec.batch_size)  # type: ignore[union-attr]
        try:
            budget = spec.max_new_tokens or task.max_new_tokens  # type: ignore[union-attr]
            answer = functools.partial(teacher.complete, max_new_tokens=budget)
            distill(answer, prompts, answered, batch_size=spec.batch_size, teacher_name=spec.teacher,  # type: ignore[union-attr]
                    progress=ctx.progress)
        finally:
            teacher.close()
    by_id = {s.id: s for s in samples}
    kept = []
    for conv in read_jsonl(answered, Conversation):
        answer = conv.messages[-1].content or ""
        sample = by_id.get(conv.id or "")
        if spec.keep == "all" or (sample is not None and task.reward(sample, task.parse(answer)) >= 1.0):  # type: ignore[union-attr]
            kept.append(conv)
    if not kept:
        raise DataError(answered, None, None, f"the teacher {spec.teacher!r} got no prompt exactly right; "  # type: ignore[union-attr]
                        "use keep: all, a stronger teacher, or generated data")
    write_jsonl(out, kept)
    return str(out)


def preference_data(ctx: RungContext) -> str:
    """Pairs (DPO) or marked rows (KTO) sampled from the starting model and graded by the task's reward, or a file."""
    spec = ctx.rung.data
    if spec.source == "file":  # type: ignore[union-attr]
        return _file(ctx)
    out = ctx.dir / "pairs.jsonl"
    if not out.exists():
        counts = pairs_from_task(ctx.start_model, ctx.task, spec.rows, out, split=spec.split, seed=ctx.seed,  # type: ignore[union-attr]
                                 k=spec.k, temperature=spec.temperature, batch_size=spec.batch_size,  # type: ignore[union-attr]
                                 format="marked" if ctx.rung.kind == "kto" else "pairs",
                                 with_target=spec.with_target, max_new_tokens=spec.max_new_tokens,  # type: ignore[union-attr]
                                 progress=ctx.progress)
        atomic_write_text(ctx.dir / "pairs_counts.json", json.dumps(counts) + "\n")
    if count_rows(out) == 0:
        raise DataError(out, None, None, f"no pairs: every answer of {ctx.start_model} scored alike on each prompt; "
                        "set data.with_target: true or sample more rows")
    return str(out)


# -- training -------------------------------------------------------------------------------------
def _finished(run: Path) -> bool:
    return (run / RUN_META).exists()


def _resumable(run: Path) -> bool:
    ckpts = run / "checkpoints"
    return (run / "train_config.json").exists() and ckpts.exists() and any(ckpts.iterdir())


def _train(fn: Callable[..., Any], config, run: Path, progress: bool) -> None:
    """Run a trainer to the end: nothing when it finished, a resume when it has a checkpoint, else a fresh run."""
    if _finished(run):
        return
    if _resumable(run):
        fn(out_dir=str(run), resume=True, progress=progress)
    else:
        fn(config)


def run_stats(run: Path) -> dict[str, float]:
    """Summed step time and tokens of a run's ``metrics.jsonl`` (both survive a resume)."""
    seconds = tokens = gen = 0.0
    path = run / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            seconds += rec.get("step_time", 0.0)
            tokens += rec.get("n_tokens", 0.0)
            gen += rec.get("gen_tokens", 0.0)
    return {"seconds": seconds, "tokens": tokens + gen, "gen_tokens": gen}


def _trained(run: Path, config, data_path: str | None, rows: int | None, data_seconds: float) -> Trained:
    """What a finished run made. ``examples`` are the distinct rows its steps reached (``rows`` at most)."""
    meta = json.loads((run / RUN_META).read_text())
    stats = run_stats(run)
    steps = meta.get("steps") or 0
    seen = None if rows is None else min(rows, steps * config.batch_size * config.grad_accum)
    return Trained(model=str(run), artifact="adapter" if meta.get("lora") else "full", data_path=data_path,
                   examples=seen, tokens=int(stats["tokens"]), train_seconds=stats["seconds"],
                   data_seconds=data_seconds, settings=json.loads(config.model_dump_json()),
                   notes={"steps": steps, "method": meta.get("method"), "data_rows": rows})


def _settings(ctx: RungContext, **filled: Any):
    train = dict(ctx.rung.train)
    train.setdefault("seed", ctx.ladder.seed)
    train.setdefault("progress", ctx.progress)
    return trainer_class(ctx.rung.kind)(**{**train, **filled})


def run_baseline(ctx: RungContext) -> Trained:
    """Nothing to train: the starting model, evaluated with the rung's prompt (``shots``)."""
    shots = ctx.ladder.eval.shots if ctx.rung.shots is None else ctx.rung.shots
    return Trained(model=ctx.start_model, artifact="base", settings={"shots": shots}, train_seconds=0.0, tokens=0,
                   examples=shots)


def run_sft(ctx: RungContext) -> Trained:

    t0 = time.perf_counter()
    data = sft_data(ctx)
    data_seconds = time.perf_counter() - t0
    run = ctx.dir / "run"
    config = _settings(ctx, model=ctx.start_model, data=data, out_dir=str(run))
    _train(sft, config, run, ctx.progress)
    return _trained(run, config, data, count_rows(data), data_seconds)


def run_preference(ctx: RungContext) -> Trained:

    t0 = time.perf_counter()
    data = preference_data(ctx)
    data_seconds = time.perf_counter() - t0
    run = ctx.dir / "run"
    loss = "kto" if ctx.rung.kind == "kto" else ctx.rung.train.get("loss", "dpo")
    config = _settings(ctx, model=ctx.start_model, data=data, out_dir=str(run), loss=loss)
    _train(preference, config, run, ctx.progress)
    return _trained(run, config, data, count_rows(data), data_seconds)


def run_rl(ctx: RungContext) -> Trained:
    """RL on the task's prompts, rewarded by the task's own reward unless the rung's ``train.rewards`` say otherwise."""

    spec = ctx.rung.data
    run = ctx.dir / "run"
    if spec.source == "file":  # type: ignore[union-attr]
        filled: dict[str, Any] = {"data": _file(ctx)}
        prompts = count_rows(filled["data"])
    else:
        filled = {"split": spec.split, "n_prompts": spec.rows}  # type: ignore[union-attr]
        prompts = spec.rows  # type: ignore[union-attr]
        if spec.seed is not None and "seed" not in ctx.rung.train:  # type: ignore[union-attr]
            filled["seed"] = spec.seed  # type: ignore[union-attr]
    config = _settings(ctx, model=ctx.start_model, task=ctx.task, out_dir=str(run), **filled)
    _train(rl, config, run, ctx.progress)
    out = _trained(run, config, filled.get("data"), None, 0.0)
    steps = out.notes.get("steps") or 0
    out.examples = min(prompts, steps * config.batch_size)  # prompts seen
    out.notes["responses"] = steps * config.batch_size * config.group_size
    return out


RUNNERS: dict[str, Runner] = {"baseline": run_baseline, "sft": run_sft, "dpo": run_preference,
                              "kto": run_preference, "rl": run_rl}
"""The runner of each rung kind; :func:`~agentladder.ladder.climb.climb` takes replacements."""

__all__ = ["RUNNERS", "RungContext", "Runner", "Trained", "run_baseline", "run_preference", "run_rl", "run_sft",
           "run_stats"]
