"""The rungs: each one makes (or finds) its data, trains from its starting model, and hands back what it made.

Every rung calls the project's own Python API (:func:`~agentladder.train.sft.sft`,
:func:`~agentladder.train.preference.preference`, :func:`~agentladder.train.rl.rl`,
:func:`~agentladder.evals.sampling.pairs_from_task`, :func:`~agentladder.data.distill.distill`)
and keeps what it finished in its folder, so running it again after a kill reuses the data and
resumes the training from its newest checkpoint. Its data is fresh (:mod:`agentladder.ladder.fresh`):
no prompt an earlier rung drew or a held-out split holds.

```
<out_dir>/02-sft/
  data.jsonl          the rung's training data (generated, distilled, or a file without excluded rows)
  pairs.jsonl         a preference rung's pairs; graded.jsonl every graded answer they were chosen from
  prompts.jsonl       an RL rung's prompts; filter.json the pass-rate filter's yield
  inputs.txt          the normalised inputs of every row the rung drew (no later rung uses them)
  run/                the trainer's run folder (checkpoints, metrics.jsonl, the model)
  eval/<split>/       the evaluation on each held-out split (validation; test and shifted if kept)
  control/            a dpo rung's control (``control: sft``): data.jsonl (the pairs' chosen answers), run/, eval/
```
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
from agentladder.data.schema import Conversation, PreferencePair
from agentladder.errors import ConfigError
from agentladder.evals.sampling import model_answers, pairs_from_task
from agentladder.ladder.config import RETRIEVAL, LadderConfig, Rung, trainer_class
from agentladder.ladder.fresh import file_inputs, rung_seed, without
from agentladder.models.classifier import MANIFEST, FeatureClassifier, is_classifier_folder
from agentladder.models.loading import RUN_META
from agentladder.models.providers import make_provider
from agentladder.tasks import Sample, Task, get_task, write_data
from agentladder.tasks.make import draw_samples, fresh_samples
from agentladder.tasks.retrieval.kb import CORPUS, load_split, query_file
from agentladder.tasks.task import input_key
from agentladder.train.classifier import train_classifier
from agentladder.train.embed import MANIFEST as EMBED_MANIFEST
from agentladder.train.embed import EmbedConfig, train_embed
from agentladder.train.preference import preference
from agentladder.train.rl import rl
from agentladder.train.sft import SFTConfig, sft


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
    exclude: frozenset[str] = frozenset()
    """Normalised inputs the rung may not train on: every held-out split's, and every earlier rung's."""
    notes: dict[str, Any] = field(default_factory=dict)
    """What the rung's data making found (rows dropped, the filter's yield, the prompts it drew)."""
    validation: str | None = None
    """The climb's validation split (a file of the task's rows): what a classifier rung chooses its
    configuration on, as the gate decides every rung on it."""
    learned: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The climb's earlier ``reward_model`` and ``judge`` rungs by name: ``{kind, model, version, accepted,
    reason}`` (:mod:`agentladder.ladder.feedback_rungs`)."""
    train_overrides: dict[str, Any] = field(default_factory=dict)
    """Trainer fields the climb resolved for this rung (an RL rung's rewards that name earlier rungs)."""
    controlled: Trained | None = None
    """For the ``control`` runner: what the rung it stands beside made (its pairs and settings)."""

    @property
    def task(self) -> str:
        """The task spec the rung's data, training and evaluation use (with the rung's instructions)."""
        return self.rung.task(self.ladder.task)

    @property
    def seed(self) -> int:
        """The seed of the rung's generated data: its own ``data.seed``, else a stream of its own
        (:func:`~agentladder.ladder.fresh.rung_seed`)."""
        spec = self.rung.data
        own = getattr(spec, "seed", None)
        return rung_seed(self.ladder.seed, self.rung.name) if own is None else own


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
    inputs: list[str] | None = None
    """Normalised inputs of every row the rung drew (its training rows, and the prompts it sampled to
    choose them); no later rung trains on these."""


Runner = Callable[[RungContext], Trained]


# -- data -----------------------------------------------------------------------------------------
def count_rows(path: str | os.PathLike) -> int:
    return sum(1 for _ in iter_json_lines(path))


def _file(ctx: RungContext) -> str:
    """The rung's data file without the rows whose input an earlier rung or a held-out split used."""
    path = Path(ctx.rung.data.path)  # type: ignore[union-attr]
    if not path.exists():
        raise DataError(path, None, None, f"rung {ctx.rung.name!r}: no such data file")
    kept, dropped = without(path, ctx.exclude, ctx.dir / f"fresh-{path.name}")
    if dropped:
        ctx.notes["dropped_seen_rows"] = dropped
    return kept


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
                   balance=spec.balance, exclude=ctx.exclude)  # type: ignore[union-attr]
        return str(out)
    return _distilled(ctx, out)


def _distilled(ctx: RungContext, out: Path) -> str:
    """Teacher answers to the task's prompts; with ``keep: correct`` only those the task's reward gives full
    marks (for the built-in tasks: exact match)."""
    spec = ctx.rung.data
    task = get_task(ctx.task)
    samples = fresh_samples(task, spec.split, spec.rows, seed=ctx.seed, exclude=ctx.exclude)  # type: ignore[union-attr]
    prompts = ctx.dir / "prompts.jsonl"
    if not prompts.exists():
        write_jsonl(prompts, [task.to_sft(s) for s in samples])
    ctx.notes["drawn"] = [input_key(s.input) for s in samples]
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
    """Pairs (DPO) or marked rows (KTO) from the starting model's own graded answers on fresh prompts (the
    model's errors first with ``greedy``), or a file."""
    spec = ctx.rung.data
    if spec.source == "file":  # type: ignore[union-attr]
        return _file(ctx)
    out = ctx.dir / "pairs.jsonl"
    samples = fresh_samples(ctx.task, spec.split, spec.rows, seed=ctx.seed, exclude=ctx.exclude)  # type: ignore[union-attr]
    ctx.notes["drawn"] = [input_key(s.input) for s in samples]
    if not out.exists():
        counts = pairs_from_task(ctx.start_model, ctx.task, spec.rows, out, samples=samples, seed=ctx.seed,  # type: ignore[union-attr]
                                 k=spec.k, temperature=spec.temperature, batch_size=spec.batch_size,  # type: ignore[union-attr]
                                 format="marked" if ctx.rung.kind == "kto" else "pairs",
                                 with_target=spec.with_target, max_new_tokens=spec.max_new_tokens,  # type: ignore[union-attr]
                                 greedy=spec.greedy, max_rows=spec.pairs, pairing=spec.pairing,  # type: ignore[union-attr]
                                 graded_out=ctx.dir / "graded.jsonl", progress=ctx.progress)
        atomic_write_text(ctx.dir / "pairs_counts.json", json.dumps(counts) + "\n")
    if count_rows(out) == 0:
        raise DataError(out, None, None, f"no pairs: every answer of {ctx.start_model} scored alike on each prompt; "
                        "set data.with_target: true or sample more rows")
    return str(out)


def rl_prompts(ctx: RungContext) -> str:
    """The RL rung's prompts as task rows: fresh prompts of the generated split, kept (with ``filter_k``)
    only where the starting model sometimes fails: a pass rate over ``filter_k`` samples strictly between
    0 and 1. With ``greedy_errors``, each prompt whose greedy answer is wrong while a sample is right comes
    first, that many times; with ``always_wrong``, the prompts no sample answers right come last (for a
    trainer with ``reference_guidance``). The filter's yield goes to ``filter.json`` and the rung's notes.
    With ``balance``, the prompts are drawn from ``BALANCE_POOL`` times as many fresh rows, each value of
    that target field in proportion to the square root of its count, no row twice."""
    spec = ctx.rung.data
    task = get_task(ctx.task)
    out = ctx.dir / "prompts.jsonl"
    samples = draw_samples(task, spec.split, spec.rows, seed=ctx.seed, exclude=ctx.exclude,  # type: ignore[union-attr]
                           balance=spec.balance, repeat=False)  # type: ignore[union-attr]
    ctx.notes["drawn"] = [input_key(s.input) for s in samples]
    if out.exists():
        if (ctx.dir / "filter.json").exists():
            ctx.notes["filter"] = json.loads((ctx.dir / "filter.json").read_text())
        return str(out)
    if spec.filter_k:  # type: ignore[union-attr]
        samples, stats = _filtered(ctx, task, samples)
        atomic_write_text(ctx.dir / "filter.json", json.dumps(stats) + "\n")
        ctx.notes["filter"] = stats
    write_jsonl(out, [task.to_row(s) for s in samples])
    return str(out)


def _filtered(ctx: RungContext, task: Task, samples: list[Sample]) -> tuple[list[Sample], dict[str, Any]]:
    """The prompts the RL filter keeps (copies of the fixable greedy errors first) and its yield."""
    spec = ctx.rung.data
    k, copies = spec.filter_k, spec.greedy_errors  # type: ignore[union-attr]
    graded = model_answers(ctx.start_model, task, samples, ctx.dir / "filter-samples.jsonl", k=k,
                           temperature=spec.filter_temperature, max_new_tokens=spec.max_new_tokens,  # type: ignore[union-attr]
                           batch_size=spec.batch_size, greedy=bool(copies), seed=ctx.seed,  # type: ignore[union-attr]
                           progress=ctx.progress)
    rates = {s.id: sum(r >= 1.0 for r in graded[s.id]["rewards"]) / k for s in samples}
    fixable = [s for s in samples if copies and graded[s.id]["greedy_reward"] < 1.0 and rates[s.id] > 0]
    first = {s.id for s in fixable}
    sometimes = [s for s in samples if 0.0 < rates[s.id] < 1.0 and s.id not in first]
    never = [s for s in samples if rates[s.id] == 0.0] if spec.always_wrong else []  # type: ignore[union-attr]
    kept = [replace(s, id=s.id if c == 0 else f"{s.id}#{c + 1}") for c in range(copies) for s in fixable]
    kept += sometimes + never
    stats: dict[str, Any] = {"k": k, "pool": len(samples), "kept": len(kept),
                             "always_right": sum(rates[s.id] == 1.0 for s in samples),
                             "always_wrong": sum(rates[s.id] == 0.0 for s in samples)}
    if copies:
        stats.update(greedy_wrong=sum(graded[s.id]["greedy_reward"] < 1.0 for s in samples),
                     fixable=len(fixable), copies=copies)
    if never:
        stats["always_wrong_kept"] = len(never)
    stats["yield"] = (len(fixable) + len(sometimes) + len(never)) / len(samples)
    if not kept:
        raise DataError(ctx.dir / "filter-samples.jsonl", None, None,
                        f"no prompt of {len(samples)} is one {ctx.start_model} sometimes fails "
                        f"({stats['always_right']} always right, {stats['always_wrong']} always wrong in "
                        f"{k} samples): draw more rows or sample more answers")
    return kept, stats


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
    train = {**ctx.rung.train, **ctx.train_overrides}
    train.setdefault("seed", ctx.ladder.seed)
    train.setdefault("progress", ctx.progress)
    return trainer_class(ctx.rung.kind)(**{**train, **filled})


def _drawn(ctx: RungContext, data: str | None) -> list[str]:
    """Every input the rung drew: the prompts it sampled or generated, and its training file's rows."""
    drawn = list(ctx.notes.pop("drawn", []))
    return list(dict.fromkeys(drawn + (file_inputs(data) if data else [])))


def run_baseline(ctx: RungContext) -> Trained:
    """Nothing to train: the starting model, evaluated with the rung's prompt (``shots``)."""
    if ctx.ladder.task == RETRIEVAL:  # an embedder: no prompt, no shots
        return Trained(model=ctx.start_model, artifact="base", train_seconds=0.0, examples=0, inputs=[])
    shots = ctx.ladder.eval.shots if ctx.rung.shots is None else ctx.rung.shots
    shown = get_task(ctx.task).select_shots(shots)
    return Trained(model=ctx.start_model, artifact="base", settings={"shots": shots}, train_seconds=0.0, tokens=0,
                   examples=shots, inputs=[input_key(s.input) for s in shown])


def run_sft(ctx: RungContext) -> Trained:

    t0 = time.perf_counter()
    data = sft_data(ctx)
    data_seconds = time.perf_counter() - t0
    run = ctx.dir / "run"
    config = _settings(ctx, model=ctx.start_model, data=data, out_dir=str(run))
    _train(sft, config, run, ctx.progress)
    out = _trained(run, config, data, count_rows(data), data_seconds)
    out.inputs = _drawn(ctx, data)
    out.notes.update(ctx.notes)
    return out


def run_preference(ctx: RungContext) -> Trained:

    t0 = time.perf_counter()
    data = preference_data(ctx)
    data_seconds = time.perf_counter() - t0
    run = ctx.dir / "run"
    loss = "kto" if ctx.rung.kind == "kto" else ctx.rung.train.get("loss", "dpo")
    config = _settings(ctx, model=ctx.start_model, data=data, out_dir=str(run), loss=loss)
    _train(preference, config, run, ctx.progress)
    out = _trained(run, config, data, count_rows(data), data_seconds)
    out.inputs = _drawn(ctx, data)
    counts = ctx.dir / "pairs_counts.json"
    out.notes.update(ctx.notes, **({"pairs": json.loads(counts.read_text())} if counts.exists() else {}))
    return out


CONTROL = "control"
"""A preference rung's control lives in this folder of the rung's."""


def control_data(pairs: str | os.PathLike, out: Path) -> str:
    """One SFT conversation per pair: its prompt and its chosen answer."""
    if not out.exists():
        rows = [Conversation(id=pair.id, messages=[*pair.prompt, *pair.chosen])
                for pair in read_jsonl(pairs, PreferencePair)]
        write_jsonl(out, rows)
    return str(out)


def run_control(ctx: RungContext) -> Trained:
    """The SFT control of a ``dpo`` rung (``control: sft``): its starting model fine-tuned on the chosen answer of
    each of its pairs, with every setting the two trainers share taken from the rung as it ran (adapter,
    learning rate, warm-up and schedule, steps, pairs a step as rows a step, length, precision, seed), so the two
    differ only in what the rejected answers add."""
    rung = ctx.controlled
    if rung is None or rung.data_path is None:
        raise ConfigError(f"rung {ctx.rung.name!r}: a control needs the rung's pairs")
    folder = ctx.dir / CONTROL
    folder.mkdir(parents=True, exist_ok=True)
    data = control_data(rung.data_path, folder / "data.jsonl")
    shared = {k: v for k, v in rung.settings.items() if k in SFTConfig.model_fields}
    run = folder / "run"
    config = SFTConfig(**{**shared, "model": ctx.start_model, "data": data, "out_dir": str(run),
                          "progress": ctx.progress})
    _train(sft, config, run, ctx.progress)
    out = _trained(run, config, data, count_rows(data), 0.0)
    out.notes["kind"] = "sft"
    return out


def run_rl(ctx: RungContext) -> Trained:
    """RL on the task's prompts, rewarded by the task's own reward unless the rung's ``train.rewards`` say otherwise."""

    spec = ctx.rung.data
    run = ctx.dir / "run"
    t0 = time.perf_counter()
    data = _file(ctx) if spec.source == "file" else rl_prompts(ctx)  # type: ignore[union-attr]
    data_seconds = time.perf_counter() - t0
    prompts = count_rows(data)
    config = _settings(ctx, model=ctx.start_model, task=ctx.task, out_dir=str(run), data=data)
    _train(rl, config, run, ctx.progress)
    out = _trained(run, config, data, None, data_seconds)
    steps = out.notes.get("steps") or 0
    out.examples = min(prompts, steps * config.batch_size)  # prompts seen
    out.inputs = _drawn(ctx, data)
    out.notes.update(ctx.notes, responses=steps * config.batch_size * config.group_size, data_rows=prompts)
    return out


def classifier_data(ctx: RungContext) -> str:
    """The classifier rung's ``{"text", "label"}`` rows: fresh rows of the task's generated split, or a file
    without the rows an earlier rung or a held-out split used."""
    spec = ctx.rung.data
    if spec.source == "file":  # type: ignore[union-attr]
        return _file(ctx)
    out = ctx.dir / "data.jsonl"
    if not out.exists():
        write_data(ctx.task, spec.split, spec.rows, out, seed=ctx.seed, exclude=ctx.exclude)  # type: ignore[union-attr]
    return str(out)


def feature_model(start_model: str) -> str:
    """The feature model a classifier rung uses by default: its starting model, or, when that is a classifier
    (a classifier rung after a classifier rung), the model that classifier reads features from."""
    if is_classifier_folder(start_model):
        return FeatureClassifier.load(start_model).spec.model
    return start_model


def run_classifier(ctx: RungContext) -> Trained:
    """A scikit-learn head on a frozen model's features (:func:`~agentladder.train.classifier.train_classifier`):
    every layer x C configuration fitted on the rung's rows and chosen on the climb's validation split (or a
    held-out share of the rows, ``train.validation: holdout``); the test split is never read here. The chosen
    classifier is saved to ``run/`` and scored by the same evaluation as every rung."""
    settings = trainer_class("classifier")(**ctx.rung.train)
    t0 = time.perf_counter()
    data = classifier_data(ctx)
    data_seconds = time.perf_counter() - t0
    run, record = ctx.dir / "run", ctx.dir / "train.json"
    features = settings.features or feature_model(ctx.start_model)
    if not (is_classifier_folder(run) and record.exists()):
        if settings.validation == "ladder" and ctx.validation is None:
            raise ConfigError(f"rung {ctx.rung.name!r}: no validation split to choose the classifier on")
        result = train_classifier(
            data, str(run), features=features, layers=settings.layers, pooling=settings.pooling,
            validation=ctx.validation if settings.validation == "ladder" else None,
            validation_share=settings.validation_share, task=ctx.ladder.task, c_values=settings.c_values,
            heads=settings.heads, concat=settings.concat, calibrate=settings.calibrate, max_length=settings.max_length, batch_size=settings.batch_size,
            cache_dir=settings.cache_dir, seed=ctx.ladder.seed if settings.seed is None else settings.seed,
            overwrite=True, progress=ctx.progress)
        atomic_write_text(record, json.dumps({"seconds": result.seconds}) + "\n")
    manifest = json.loads((run / MANIFEST).read_text())
    training = manifest.get("training", {})
    seconds = json.loads(record.read_text())["seconds"]
    chosen = {"features": features, "layer": manifest["features"].get("layer"), "C": training.get("C"),
              "pooling": settings.pooling}
    notes = {**ctx.notes, "chosen": chosen, "configurations_tried": training.get("configurations_tried"),
             "chosen_on": training.get("validation"), "data_rows": training.get("rows"),
             "chooser_validation": {k: manifest.get("validation", {}).get(k) for k in ("accuracy", "macro_f1")},
             "feature_seconds": seconds.get("features"), "head_seconds": seconds.get("heads")}
    return Trained(model=str(run), artifact="classifier", data_path=data, examples=training.get("rows"),
                   tokens=None, train_seconds=sum(seconds.values()), data_seconds=data_seconds,
                   settings={**settings.model_dump(), **chosen}, notes=notes, inputs=_drawn(ctx, data))


def run_embed(ctx: RungContext) -> Trained:
    """Fine-tune the starting embedder on the rung's training queries (:func:`~agentladder.train.embed.train_embed`).

    Queries a held-out split or an earlier rung holds are dropped first (``fresh-train.jsonl``, the corpus
    kept); each ``train.lrs`` trains a candidate chosen on the climb's validation queries (the split the gate
    then decides on; the test split is never read here). A killed rung resumes at its next candidate."""
    settings = trainer_class("embed")(**ctx.rung.train)
    if ctx.validation is None:
        raise ConfigError(f"rung {ctx.rung.name!r}: no validation split to choose the embedder on")
    given = query_file(ctx.rung.data.path)  # type: ignore[union-attr]
    corpus = given.parent / CORPUS
    _, queries = load_split(given, corpus)
    kept = [q for q in queries if input_key(q.text) not in ctx.exclude]
    ctx.dir.mkdir(parents=True, exist_ok=True)
    data = ctx.dir / "fresh-train.jsonl"
    if not data.exists():
        write_jsonl(data, [{"id": q.id, "text": q.text, "relevant": list(q.relevant)} for q in kept])
    run = ctx.dir / "run"
    config = EmbedConfig(model=ctx.start_model, data=str(data), corpus=str(corpus), out_dir=str(run),
                         validation=ctx.validation, lrs=settings.lrs, epochs=settings.epochs,
                         batch_size=settings.batch_size, hard_negatives=settings.hard_negatives,
                         max_rows=settings.max_rows, warmup_ratio=settings.warmup_ratio,
                         seed=ctx.ladder.seed if settings.seed is None else settings.seed, overwrite=True,
                         progress=ctx.progress)
    if (run / EMBED_MANIFEST).exists():
        manifest = json.loads((run / EMBED_MANIFEST).read_text())
        chosen, seconds, examples = manifest["learning_rate"], manifest["train_seconds"], manifest["examples"]
        tried = manifest["tried"]
    else:
        result = train_embed(config)
        chosen, seconds, examples, tried = result.learning_rate, result.train_seconds, result.examples, result.tried
    notes = {**ctx.notes, "dropped_seen_queries": len(queries) - len(kept), "chosen_on": ctx.validation,
             "tried": [{"learning_rate": t["learning_rate"], **t["validation"]} for t in tried]}
    return Trained(model=str(run), artifact="embedder", data_path=str(data), examples=examples,
                   train_seconds=seconds, settings={**settings.model_dump(), "learning_rate": chosen}, notes=notes,
                   inputs=[input_key(q.text) for q in kept])


RUNNERS: dict[str, Runner] = {"baseline": run_baseline, "sft": run_sft, "dpo": run_preference,
                              "kto": run_preference, "rl": run_rl, "classifier": run_classifier,
                              "embed": run_embed, CONTROL: run_control}
"""The runner of each rung kind (and of a preference rung's control); :func:`~agentladder.ladder.climb.climb`
takes replacements."""

__all__ = ["CONTROL", "RUNNERS", "RungContext", "Runner", "Trained", "feature_model", "run_baseline", "run_classifier", "run_control", "run_embed", "run_preference", "run_rl",
           "run_sft",
           "run_stats"]
