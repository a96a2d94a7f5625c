"""The climb: run the rungs in order, decide on the validation split, report on the test split.

For each rung, top to bottom:

1. its starting model: the champion (the best rung kept so far), the base, or a named earlier rung;
2. its data and training (:mod:`agentladder.ladder.rungs`), on prompts no earlier rung trained on and
   no held-out split holds;
3. an evaluation on the ladder's **validation** split (the same rows for every rung);
4. a ``dpo`` rung with a ``control``: the control run (SFT on the rung's chosen answers with the rung's settings),
   scored on the validation split too, with the paired test between rung and control;
5. the gate (:mod:`agentladder.ladder.gates`) on those figures: kept or rejected (with ``control: {gate: true}``
   it must also beat its control), and whether the climb ends;
6. a kept rung only: one evaluation on each **reporting** split (test, and shifted when there is one),
   and the paired test against the model it replaced on the same rows (and against its control, which is
   scored there too); nothing reads these to decide;
7. a version in the registry, its parent the version it started from, with the split that decided it
   and the splits it was reported on;
8. the ladder's state file (``ladder_state.json``), written atomically.

A killed climb, run again, reads the state file, skips the rungs it finished and resumes the one it
was on (its data, its newest checkpoint, its stored evaluation outputs). Finished rungs are judged again
under the gate it is given (a raised target continues a finished climb); one whose settings (or those of
a rung before it) changed since, or that would now start from another model, is refused rather than
silently reused.
At the end the ladder report (table and plot) is written to ``out_dir``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentladder.data.io import atomic_write_text
from agentladder.errors import ConfigError, DataError, MissingFileError
from agentladder.ladder.config import FEEDBACK_KINDS, RETRIEVAL, LadderConfig, load_ladder
from agentladder.ladder.embed import score_queries
from agentladder.ladder.feedback_rungs import FEEDBACK_RUNNERS, feedback_verdict, resolve_rewards
from agentladder.ladder.gates import judge
from agentladder.ladder.registry import ModelVersion, Registry, file_hash, version_id
from agentladder.ladder.report import ladder_table, write_report
from agentladder.ladder.rungs import CONTROL, RUNNERS, RungContext, Runner, Trained
from agentladder.ladder.scoring import paired, score
from agentladder.ladder.splits import Split, prepare_splits, split_inputs
from agentladder.models.classifier import is_classifier_folder
from agentladder.tasks import get_task
from agentladder.train.embed import SELECT

STATE_FILE = "ladder_state.json"
INPUTS_FILE = "inputs.txt"
"""In a rung's folder: the normalised inputs of every row the rung drew, one a line."""


@dataclass
class RungResult:
    """One rung's outcome, as the state file and the ladder report keep it."""

    name: str
    kind: str
    version: str
    parent: str | None
    model: str
    artifact: str
    metrics: dict[str, dict[str, Any]]
    """``{name: {value, ci, n}}`` on the validation split: what the gate decided on."""
    verdict: dict[str, Any]
    examples: int | None = None
    tokens: int | None = None
    train_seconds: float | None = None
    data_seconds: float | None = None
    eval_seconds: float | None = None
    wall_seconds: float | None = None
    """Wall time of the rung (data, training, evaluations) in the call that finished it."""
    fingerprint: str = ""
    notes: dict[str, Any] = field(default_factory=dict)
    reported: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """``{split: metrics}`` on the reporting splits (test, shifted); a kept rung only."""
    outcomes: dict[str, str] = field(default_factory=dict)
    """``{split: "1101-..."}``: the headline metric per row (right, wrong, not scored) in the split's order."""
    paired: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``{split: {gained, lost, n, p, gain, gain_ci}}`` against ``compared_with`` on the same rows."""
    compared_with: str | None = None
    """The champion this rung was judged against (the rung before it on the kept path)."""
    control: dict[str, Any] | None = None
    """A ``dpo`` rung's control run: ``{kind, model, train_seconds, examples, tokens, metrics, reported, outcomes,
    paired}``, its figures on the same splits as the rung's, ``paired`` the rung against its control."""

    def value(self, metric: str, split: str | None = None) -> float | None:
        """``metric`` on the validation split, or on a reporting ``split``."""
        metrics = self.metrics if split in (None, "validation") else self.reported.get(split, {})
        m = metrics.get(metric)
        return None if m is None else m.get("value")

    @property
    def kept(self) -> bool:
        return bool(self.verdict.get("kept"))


@dataclass
class ClimbResult:
    ladder: LadderConfig
    metric: str
    rungs: list[RungResult]
    champion: RungResult
    target_met: bool
    wall_seconds: float
    """Wall time of this call (a resumed climb counts only what it ran)."""
    report_dir: Path
    splits: list[Split] = field(default_factory=list)
    """The validation split (decides), then the reporting splits."""

    @property
    def climb_seconds(self) -> float:
        """Wall time of the rungs, summed over the calls that ran them (a killed call's lost work left out)."""
        return sum(r.wall_seconds or 0.0 for r in self.rungs)

    @property
    def reporting(self) -> list[str]:
        return [s.name for s in self.splits if not s.decides]

    def table(self):
        return ladder_table(self)


@dataclass
class _Climb:
    """What every step of one climb call shares."""

    config: LadderConfig
    metric: str
    out: Path
    splits: list[Split]
    reg: Registry
    state: dict[str, Any]
    progress: bool
    task: str
    providers: dict[str, Any] = field(default_factory=dict)
    """Providers a runner handed back this call (recorded models in tests), by rung name."""


def climb(ladder: LadderConfig | str | Path, *, overrides: list[str] | dict[str, Any] | None = None,
          registry: Registry | str | Path | None = None, runners: Mapping[str, Runner] | None = None,
          progress: bool = True, log: bool | None = None) -> ClimbResult:
    """Climb ``ladder`` (a :class:`LadderConfig` or a YAML file); see the module docstring.

    ``runners`` replaces the runner of a rung kind (tests give recorded models this way). ``progress``
    shows the trainers' and evaluations' progress bars; ``log`` (default: as ``progress``) one line per
    rung on stderr.
    """
    start = time.perf_counter()
    config = ladder if isinstance(ladder, LadderConfig) else load_ladder(ladder, overrides)
    task = None if config.task == RETRIEVAL else get_task(config.task)
    metric = config.gate.metric or (task.headline if task is not None else SELECT)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = prepare_splits(config, out)
    state = _read_state(out, config)
    reg = registry if isinstance(registry, Registry) else Registry(registry or config.registry)
    runners = {**RUNNERS, **FEEDBACK_RUNNERS, **(runners or {})}
    say = progress if log is None else log
    run = _Climb(config, metric, out, splits, reg, state, progress, config.task if task is None else task.name)
    used = set().union(*(split_inputs(task or config.task, s) for s in splits))
    try:
        # The state file keeps every version it registered: a resumed climb (or one pointed at another
        # registry file) registers them again, parents first, so the lineage is whole.
        for saved_version in sorted(state["versions"].values(), key=lambda v: v["created"]):
            reg.register(ModelVersion(**saved_version))
        results: list[RungResult] = []
        champion: RungResult | None = None
        for index, rung in enumerate(config.rungs):
            start_model, parent = _start(config, rung.start, results, champion)
            _check_start(rung.name, rung.kind, start_model)
            ctx = RungContext(config, rung, index, out / rung_folder(index, rung.name), start_model, progress,
                              exclude=frozenset(used), validation=splits[0].path, learned=_learned(results))
            saved = state["rungs"].get(rung.name)
            if saved is not None:
                result = _replay(run, index, RungResult(**saved), start_model, champion)
                _say(say, f"rung {index + 1}/{len(config.rungs)} {rung.name}: finished earlier, "
                          f"{metric} {result.value(metric) or 0:.3f} on validation, {_kept(result.verdict)}")
            else:
                _say(say, f"rung {index + 1}/{len(config.rungs)} {rung.name} ({rung.kind}) from {start_model}")
                result = _run_rung(run, ctx, runners[rung.kind], parent, champion, runners[CONTROL])
                _say(say, f"rung {rung.name}: {_kept(result.verdict)} on validation: {result.verdict['reason']}")
            if result.kept and config.eval.report:
                _report(run, ctx, result)
            if champion is not None:  # kept or not, on every split it was scored on: against the model it was judged against
                result.compared_with, result.paired = champion.name, _paired(champion.outcomes, result.outcomes)
            _register(run, result)
            used |= _inputs(ctx.dir)
            results.append(result)
            if result.kept:
                champion = result
            if result.verdict.get("stop"):
                break
        assert champion is not None  # the first rung is always kept
        outcome = ClimbResult(ladder=config, metric=metric, rungs=results, champion=champion,
                              target_met=bool(results[-1].verdict.get("target_met")),
                              wall_seconds=time.perf_counter() - start, report_dir=out, splits=splits)
        state["finished"] = len(results) == len(config.rungs) or bool(results[-1].verdict.get("stop"))
        state["champion"] = champion.version
        _write_state(out, state)
    finally:
        if not isinstance(registry, Registry):
            reg.close()

    write_report(outcome, out)
    return outcome


def _run_rung(run: _Climb, ctx: RungContext, runner: Runner, parent: str | None,
              champion: RungResult | None, control_runner: Runner) -> RungResult:
    """Make the rung's data, train it, score it on the validation split and judge it."""
    config, rung = run.config, ctx.rung
    ctx.dir.mkdir(parents=True, exist_ok=True)
    t_rung = time.perf_counter()
    ctx.train_overrides = resolve_rewards(ctx)
    trained = runner(ctx)
    if trained.inputs is not None:
        atomic_write_text(ctx.dir / INPUTS_FILE, "".join(f"{k}\n" for k in trained.inputs))
    control = None
    if rung.kind in FEEDBACK_KINDS:  # a learned reward: gated on its own held-out feedback, never the champion
        metrics, verdict_json = feedback_verdict(rung, trained.notes.get("held_out") or {})
        decided = _Decided(metrics, None, "")
    else:
        decided = _score(run, ctx, trained.provider if trained.provider is not None else trained.model,
                         run.splits[0])
        if rung.control is not None:
            control = _control(run, ctx, control_runner, trained, decided.outcomes)
        verdict_json = judge(config.gate, run.metric, _values(decided.metrics),
                             None if champion is None else _values(champion.metrics),
                             min_gain=rung.min_gain, control=_gating(rung, control),
                             paired=_deciding_pair(run, champion, decided.outcomes)).to_json()
    if parent is None and trained.artifact != "base":
        parent = _register_base(run.reg, config, run.task, run.state)
    result = RungResult(
        name=rung.name, kind=rung.kind, version=version_id(config.name, rung.name, ctx.dir),
        parent=parent, model=trained.model, artifact=trained.artifact, metrics=decided.metrics,
        verdict=verdict_json, examples=trained.examples, tokens=trained.tokens,
        train_seconds=trained.train_seconds, data_seconds=trained.data_seconds,
        eval_seconds=decided.seconds, wall_seconds=time.perf_counter() - t_rung,
        fingerprint=config.rung_fingerprint(ctx.index), outcomes={run.splits[0].name: decided.outcomes} if decided.outcomes else {},
        compared_with=None if champion is None else champion.name, control=control,
        notes={**trained.notes, "start_model": ctx.start_model, "shots": _shots(config, rung.shots),
               **({"instructions": rung.instructions} if rung.instructions else {})})
    run.state["versions"][result.version] = _version(config, run.task, run.metric, result, trained).to_json()
    run.state["rungs"][rung.name] = result.__dict__
    _write_state(run.out, run.state)
    if trained.provider is not None:
        run.providers[rung.name] = trained.provider  # the reporting splits ask the same recorded model
    return result


def _control(run: _Climb, ctx: RungContext, runner: Runner, trained: Trained, outcomes: str) -> dict[str, Any]:
    """Train the rung's control (:func:`~agentladder.ladder.rungs.run_control`) and score it on the validation
    split, with the paired test of the rung against it."""
    ctx.controlled = trained
    made = runner(ctx)
    if made.provider is not None:
        run.providers[f"{ctx.rung.name}/{CONTROL}"] = made.provider
    split = run.splits[0]
    scored = _score(run, ctx, made.provider if made.provider is not None else made.model, split,
                    folder=ctx.dir / CONTROL / "eval")
    assert ctx.rung.control is not None
    kept_outcomes = {split.name: scored.outcomes}
    return {"kind": ctx.rung.control.kind, "model": made.model, "artifact": made.artifact,
            "train_seconds": made.train_seconds, "examples": made.examples, "tokens": made.tokens,
            "eval_seconds": scored.seconds, "metrics": scored.metrics, "reported": {}, "outcomes": kept_outcomes,
            "paired": _paired(kept_outcomes, {split.name: outcomes})}


def _deciding_pair(run: _Climb, champion: RungResult | None, outcomes: str) -> dict[str, Any] | None:
    """The paired test of a rung's deciding-split outcomes against the champion's (for ``gate.max_p``)."""
    if champion is None:
        return None
    return paired(champion.outcomes.get(run.splits[0].name, ""), outcomes)


def _gating(rung, control: dict[str, Any] | None) -> dict[str, float | None] | None:
    """The control's validation figures when the rung is gated on its control, else ``None``."""
    if control is None or rung.control is None or not rung.control.gate:
        return None
    return _values(control["metrics"])


@dataclass
class _Decided:
    """A feedback rung's figures in the form an evaluation on the validation split has."""

    metrics: dict[str, dict[str, Any]]
    seconds: float | None
    outcomes: str


def _learned(results: list[RungResult]) -> dict[str, dict[str, Any]]:
    """The earlier reward-model and judge rungs, for the rewards of a later RL rung to name."""
    return {r.name: {"kind": r.kind, "model": r.model, "version": r.version, "accepted": bool(r.verdict.get("accepted")),
                     "reason": r.verdict.get("reason")} for r in results if r.kind in FEEDBACK_KINDS}


def _report(run: _Climb, ctx: RungContext, result: RungResult) -> None:
    """Score a kept rung once on each reporting split it has no figures for (and its control there too, with
    the rung's paired test against it); the climb then tests the rung against the champion it replaced on
    every split both were scored on. Nothing here changes a decision."""
    spent = _score_reporting(run, ctx, run.providers.get(result.name, result.model), result.reported,
                             result.outcomes)
    result.eval_seconds = (result.eval_seconds or 0.0) + spent
    result.wall_seconds = (result.wall_seconds or 0.0) + spent
    control = result.control
    if control is not None:  # scored where the rung is, and the rung tested against it
        spec = run.providers.get(f"{result.name}/{CONTROL}", control["model"])
        spent = _score_reporting(run, ctx, spec, control["reported"], control["outcomes"], ctx.dir / CONTROL / "eval")
        control["eval_seconds"] = (control.get("eval_seconds") or 0.0) + spent
        result.wall_seconds += spent  # the rung's wall holds its control's work, as it does on validation
        control["paired"] = _paired(control["outcomes"], result.outcomes)
    run.state["rungs"][result.name] = result.__dict__
    _write_state(run.out, run.state)


def _score_reporting(run: _Climb, ctx: RungContext, spec: Any, reported: dict[str, Any], outcomes: dict[str, str],
                     folder: Path | None = None) -> float:
    """Score ``spec`` on each reporting split ``reported``/``outcomes`` lack, filling them in; the seconds spent."""
    spent = 0.0
    for split in run.splits[1:]:
        if split.name not in reported or split.name not in outcomes:
            t0 = time.perf_counter()
            scored = _score(run, ctx, spec, split, folder)
            reported[split.name] = scored.metrics
            outcomes[split.name] = scored.outcomes
            spent += time.perf_counter() - t0
    return spent


def _paired(before: dict[str, str], after: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The paired test of ``after`` against ``before`` on every split both have outcomes for."""
    tests = {name: paired(before.get(name, ""), rows) for name, rows in after.items()}
    return {name: test for name, test in tests.items() if test is not None}


def _score(run: _Climb, ctx: RungContext, spec: Any, split: Split, folder: Path | None = None):
    config = run.config
    if config.task == RETRIEVAL:
        return score_queries(spec, split, metric=run.metric, seed=config.seed)
    return score(spec, ctx.task, split, str((folder or ctx.dir / "eval") / split.name), metric=run.metric,
                 shots=_shots(config, ctx.rung.shots), batch_size=config.eval.batch_size, dtype=config.eval.dtype,
                 max_new_tokens=config.eval.max_new_tokens, seed=config.seed, progress=ctx.progress)


def _inputs(folder: Path) -> set[str]:
    path = folder / INPUTS_FILE
    return set(path.read_text().splitlines()) if path.exists() else set()


def _values(metrics: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    return {k: m.get("value") for k, m in metrics.items() if isinstance(m, dict)}


def _kept(verdict: dict[str, Any]) -> str:
    return "kept" if verdict.get("kept") else "rejected"


def _replay(run: _Climb, index: int, result: RungResult, start_model: str, champion: RungResult | None) -> RungResult:
    """A rung finished by an earlier call: check it still fits the ladder, and judge it again under today's gate.

    Its settings (and those of the rungs before it) must be unchanged and it must have started from the
    model it would start from now; the gate may have changed (a higher target, say), so its verdict is
    recomputed on its validation figures and the registry's status follows.
    """
    config, out = run.config, run.out
    rung = config.rungs[index]
    folder = out / rung_folder(index, rung.name)
    if result.fingerprint != config.rung_fingerprint(index):
        raise ConfigError(f"{out / STATE_FILE}: rung {rung.name!r} finished with other settings (of it or a rung "
                          f"before it) than the ladder now gives; climb into another out_dir, or delete {folder} "
                          "and the folders of the rungs after it, and their entries in the state file")
    if result.notes.get("start_model") != start_model:
        raise ConfigError(f"{out / STATE_FILE}: rung {rung.name!r} was trained from {result.notes.get('start_model')}, "
                          f"but under the ladder's gate it would now start from {start_model}; climb into another "
                          "out_dir")
    if rung.kind in FEEDBACK_KINDS:  # its own gate, on its held-out figures, as the ladder gives it now
        result.verdict = feedback_verdict(rung, result.notes.get("held_out") or {})[1]
    else:
        result.verdict = judge(config.gate, run.metric, _values(result.metrics),
                               None if champion is None else _values(champion.metrics),
                               min_gain=rung.min_gain, control=_gating(rung, result.control),
                               paired=_deciding_pair(run, champion, result.outcomes.get(run.splits[0].name, ""))
                               ).to_json()
    run.state["rungs"][rung.name] = result.__dict__
    return result


def _register(run: _Climb, result: RungResult) -> None:
    """The rung's version as it stands now (status, decision and reporting splits) into the registry and state."""
    saved = run.state["versions"].get(result.version)
    if saved is None:
        return
    by_name = {s.name: s for s in run.splits}
    control = {k: v for k, v in (result.control or {}).items() if k != "outcomes"}
    saved.update(status=_status(result.verdict), notes={**saved.get("notes", {}), "verdict": result.verdict["reason"],
                                                        "gain": result.verdict.get("gain"),
                                                        **({"control": control} if control else {})},
                 decided_on=by_name[run.splits[0].name].record(),
                 reported_on={name: {**by_name[name].record(), "metrics": metrics,
                                     **({"paired": result.paired[name]} if name in result.paired else {})}
                              for name, metrics in result.reported.items() if name in by_name})
    run.reg.register(ModelVersion(**saved))
    _write_state(run.out, run.state)


def _say(progress: bool, text: str) -> None:
    if progress:
        from rich.console import Console

        Console(stderr=True).print(f"[bold]ladder[/] {text}", highlight=False)


def rung_folder(index: int, name: str) -> str:
    return f"{index + 1:02d}-{name}"


# -- steps ----------------------------------------------------------------------------------------
def _start(config: LadderConfig, start: str, results: list[RungResult],
           champion: RungResult | None) -> tuple[str, str | None]:
    """The model a rung starts from and its registry version (``None`` for the bare base)."""
    if start == "base" or (start == "champion" and champion is None):
        return config.base_model, None
    chosen = champion if start == "champion" else next(r for r in results if r.name == start)
    assert chosen is not None
    return chosen.model, chosen.version  # a baseline's model is the spec it evaluated


def _check_start(name: str, kind: str, start_model: str) -> None:
    """A generative rung cannot train from a classifier (a head on features, no language model head)."""
    if kind in ("sft", "dpo", "kto", "rl", *FEEDBACK_KINDS) and is_classifier_folder(start_model):
        raise ConfigError(f"rung {name!r} ({kind}) would start from the classifier in {start_model}, which does "
                          "not generate text: give it start: base or the name of an earlier generative rung")


def _shots(config: LadderConfig, shots: int | None) -> int:
    return config.eval.shots if shots is None else shots


def _register_base(reg: Registry, config: LadderConfig, task: str, state: dict[str, Any]) -> str:
    """The base model as the root of the lineage, when no baseline rung stands for it."""
    vid = f"{config.name}/base/{version_id(config.name, 'base', config.out_dir).rsplit('/', 1)[1]}"
    if vid not in state["versions"]:
        version = ModelVersion(id=vid, ladder=config.name, rung="base", kind="base", path=config.base_model,
                               artifact="base", base_model=config.base_model, status="base", task=task)
        reg.register(version)
        state["versions"][vid] = version.to_json()
    return vid


def _status(verdict: dict[str, Any]) -> str:
    if "accepted" in verdict:  # a reward model or judge rung: its own gate
        return "accepted" if verdict["accepted"] else "rejected"
    return ("target" if verdict.get("target_met") else "kept") if verdict.get("kept") else "rejected"


def _version(config: LadderConfig, task: str, metric: str, result: RungResult, trained: Trained) -> ModelVersion:
    path = trained.model if trained.artifact == "base" else str(Path(trained.model).resolve())
    data = None if trained.data_path is None else str(Path(trained.data_path).resolve())
    return ModelVersion(
        id=result.version, ladder=config.name, rung=result.name, kind=result.kind, parent=result.parent,
        path=path, artifact=trained.artifact, base_model=config.base_model, status=_status(result.verdict),
        config=trained.settings, data_path=data, data_hash=file_hash(trained.data_path), examples=trained.examples,
        tokens=trained.tokens, train_seconds=trained.train_seconds, headline=metric, score=result.value(metric),
        metrics=result.metrics, task=task,
        notes={"verdict": result.verdict.get("reason"), "gain": result.verdict.get("gain"), **result.notes})


# -- state ----------------------------------------------------------------------------------------
def _read_state(out: Path, config: LadderConfig) -> dict[str, Any]:
    path = out / STATE_FILE
    if not path.exists():
        return {"ladder": config.name, "rungs": {}, "versions": {}, "finished": False}
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(path, None, None, f"not a ladder state file ({err.msg})") from None
    if state.get("ladder") != config.name:
        raise ConfigError(f"{out} holds the climb of ladder {state.get('ladder')!r}, not {config.name!r}; "
                          "choose another out_dir")
    state.setdefault("versions", {})
    return state


def _write_state(out: Path, state: dict[str, Any]) -> None:
    atomic_write_text(out / STATE_FILE, json.dumps(state, indent=2, default=str) + "\n")


def read_climb(out_dir: str | Path) -> dict[str, Any]:
    """The state file of a climb folder (what ran, each rung's metrics and verdict)."""
    path = Path(out_dir) / STATE_FILE
    if not path.exists():
        raise MissingFileError(f"{out_dir} holds no climb ({STATE_FILE} is missing)")
    return json.loads(path.read_text())


def decided_accuracy(out_dir: str | Path) -> tuple[float, float]:
    """The champion's headline on the split that decided the climb (validation) and the gate's target, from a
    finished climb's ``ladder.json``: what :func:`~agentladder.ladder.recommend.recommend` should be given, never
    a test figure."""
    path = Path(out_dir) / "ladder.json"
    if not path.exists():
        raise MissingFileError(f"{out_dir} holds no finished climb (ladder.json is missing)")
    report = json.loads(path.read_text())
    champion = next(r for r in report["rungs"] if r["version"] == report["champion"])
    value = (champion["metrics"].get(report["metric"]) or {}).get("value")
    if value is None:
        raise DataError(path, None, None, f"the champion has no {report['metric']} on its validation split")
    return float(value), float(report["target"])


__all__ = ["ClimbResult", "RungResult", "climb", "decided_accuracy", "read_climb", "rung_folder"]
