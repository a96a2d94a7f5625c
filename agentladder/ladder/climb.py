"""The climb: run the rungs in order, score each on the same held-out split, gate it, register it.

For each rung, top to bottom:

1. its starting model: the champion (the best rung kept so far), the base, or a named earlier rung;
2. its data and training (:mod:`agentladder.ladder.rungs`);
3. an evaluation on the ladder's held-out split (the same rows for every rung);
4. the gate (:mod:`agentladder.ladder.gates`): kept or rejected, and whether the climb ends;
5. a version in the registry, its parent the version it started from;
6. the ladder's state file (``ladder_state.json``), written atomically.

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
from agentladder.evals import evaluate
from agentladder.ladder.config import LadderConfig, load_ladder
from agentladder.ladder.gates import judge
from agentladder.ladder.registry import ModelVersion, Registry, file_hash, version_id
from agentladder.ladder.report import ladder_table, write_report
from agentladder.ladder.rungs import RUNNERS, RungContext, Runner, Trained
from agentladder.tasks import get_task, write_data

STATE_FILE = "ladder_state.json"


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
    """``{name: {value, ci, n}}`` on the held-out split."""
    verdict: dict[str, Any]
    examples: int | None = None
    tokens: int | None = None
    train_seconds: float | None = None
    data_seconds: float | None = None
    eval_seconds: float | None = None
    wall_seconds: float | None = None
    """Wall time of the rung (data, training, evaluation) in the call that finished it."""
    fingerprint: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def value(self, metric: str) -> float | None:
        m = self.metrics.get(metric)
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

    @property
    def climb_seconds(self) -> float:
        """Wall time of the rungs, summed over the calls that ran them (a killed call's lost work left out)."""
        return sum(r.wall_seconds or 0.0 for r in self.rungs)
    report_dir: Path

    def table(self):

        return ladder_table(self)


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
    task = get_task(config.task)
    metric = config.gate.metric or task.headline
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    test_data = _test_split(config, out)
    state = _read_state(out, config)
    reg = registry if isinstance(registry, Registry) else Registry(registry or config.registry)
    runners = {**RUNNERS, **(runners or {})}
    say = progress if log is None else log
    try:
        # The state file keeps every version it registered: a resumed climb (or one pointed at another
        # registry file) registers them again, parents first, so the lineage is whole.
        for saved_version in sorted(state["versions"].values(), key=lambda v: v["created"]):
            reg.register(ModelVersion(**saved_version))
        results: list[RungResult] = []
        champion: RungResult | None = None
        for index, rung in enumerate(config.rungs):
            start_model, parent = _start(config, rung.start, results, champion)
            saved = state["rungs"].get(rung.name)
            if saved is not None:
                result = _replay(config, index, RungResult(**saved), start_model, champion, metric, reg, state, out)
                _say(say, f"rung {index + 1}/{len(config.rungs)} {rung.name}: finished earlier, "
                               f"{metric} {result.value(metric) or 0:.3f}, {_kept(result.verdict)}")
            else:
                _say(say, f"rung {index + 1}/{len(config.rungs)} {rung.name} ({rung.kind}) from {start_model}")
                ctx = RungContext(config, rung, index, out / rung_folder(index, rung.name), start_model, progress)
                ctx.dir.mkdir(parents=True, exist_ok=True)
                t_rung = time.perf_counter()
                trained = runners[rung.kind](ctx)
                t0 = time.perf_counter()
                metrics = _evaluate(config, trained, test_data, ctx, rung.shots)
                eval_seconds = time.perf_counter() - t0
                verdict = judge(config.gate, metric, _values(metrics), None if champion is None
                                else _values(champion.metrics), min_gain=rung.min_gain)
                if parent is None and trained.artifact != "base":
                    parent = _register_base(reg, config, task.name, state)
                result = RungResult(
                    name=rung.name, kind=rung.kind, version=version_id(config.name, rung.name, ctx.dir),
                    parent=parent, model=trained.model, artifact=trained.artifact, metrics=metrics,
                    verdict=verdict.to_json(), examples=trained.examples, tokens=trained.tokens,
                    train_seconds=trained.train_seconds, data_seconds=trained.data_seconds,
                    eval_seconds=eval_seconds, wall_seconds=time.perf_counter() - t_rung,
                    fingerprint=config.rung_fingerprint(index),
                    notes={**trained.notes, "start_model": start_model, "shots": _shots(config, rung.shots),
                           **({"instructions": rung.instructions} if rung.instructions else {})})
                version = _version(config, task.name, metric, result, trained)
                reg.register(version)
                state["versions"][version.id] = version.to_json()
                state["rungs"][rung.name] = result.__dict__
                _write_state(out, state)
                _say(say, f"rung {rung.name}: {_kept(result.verdict)}: {verdict.reason}")
            results.append(result)
            if result.kept:
                champion = result
            if result.verdict.get("stop"):
                break
        assert champion is not None  # the first rung is always kept
        outcome = ClimbResult(ladder=config, metric=metric, rungs=results, champion=champion,
                              target_met=bool(results[-1].verdict.get("target_met")),
                              wall_seconds=time.perf_counter() - start, report_dir=out)
        state["finished"] = len(results) == len(config.rungs) or bool(results[-1].verdict.get("stop"))
        state["champion"] = champion.version
        _write_state(out, state)
    finally:
        if not isinstance(registry, Registry):
            reg.close()

    write_report(outcome, out)
    return outcome


def _values(metrics: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    return {k: m.get("value") for k, m in metrics.items() if isinstance(m, dict)}


def _kept(verdict: dict[str, Any]) -> str:
    return "kept" if verdict.get("kept") else "rejected"


def _replay(config: LadderConfig, index: int, result: RungResult, start_model: str, champion: RungResult | None,
            metric: str, reg: Registry, state: dict[str, Any], out: Path) -> RungResult:
    """A rung finished by an earlier call: check it still fits the ladder, and judge it again under today's gate.

    Its settings (and those of the rungs before it) must be unchanged and it must have started from the
    model it would start from now; the gate may have changed (a higher target, say), so its verdict is
    recomputed and the registry's status follows.
    """
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
    verdict = judge(config.gate, metric, _values(result.metrics),
                    None if champion is None else _values(champion.metrics), min_gain=rung.min_gain).to_json()
    if verdict != result.verdict:
        result.verdict = verdict
        saved = state["versions"].get(result.version)
        if saved is not None:
            saved.update(status=_status(verdict), notes={**saved.get("notes", {}), "verdict": verdict["reason"]})
            reg.register(ModelVersion(**saved))
        state["rungs"][rung.name] = result.__dict__
        _write_state(out, state)
    return result


def _say(progress: bool, text: str) -> None:
    if progress:
        from rich.console import Console

        Console(stderr=True).print(f"[bold]ladder[/] {text}", highlight=False)


def rung_folder(index: int, name: str) -> str:
    return f"{index + 1:02d}-{name}"


# -- steps ----------------------------------------------------------------------------------------
def _test_split(config: LadderConfig, out: Path) -> str:
    """The held-out rows every rung is scored on: the given file, or the task's test split written once."""
    if config.eval.data:
        if not Path(config.eval.data).exists():
            raise MissingFileError(f"eval.data: {config.eval.data}: no such file")
        return config.eval.data
    path = out / "test.jsonl"
    if not path.exists():
        write_data(config.task, "test", config.eval.rows, path, seed=config.eval.seed)
    return str(path)


def _start(config: LadderConfig, start: str, results: list[RungResult],
           champion: RungResult | None) -> tuple[str, str | None]:
    """The model a rung starts from and its registry version (``None`` for the bare base)."""
    if start == "base" or (start == "champion" and champion is None):
        return config.base_model, None
    chosen = champion if start == "champion" else next(r for r in results if r.name == start)
    assert chosen is not None
    return chosen.model, chosen.version  # a baseline's model is the spec it evaluated


def _shots(config: LadderConfig, shots: int | None) -> int:
    return config.eval.shots if shots is None else shots


def _evaluate(config: LadderConfig, trained: Trained, test_data: str, ctx: RungContext,
              shots: int | None) -> dict[str, dict[str, Any]]:

    spec = trained.provider if trained.provider is not None else trained.model
    report = evaluate([spec], ctx.task, data=test_data, shots=_shots(config, shots), out=str(ctx.dir / "eval"),
                      batch_size=config.eval.batch_size, dtype=config.eval.dtype,
                      max_new_tokens=config.eval.max_new_tokens,
                      seed=config.seed, progress=ctx.progress)
    result = next(iter(report.models.values()))
    return {name: m.to_json() for name, m in result.metrics.items()}


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


__all__ = ["ClimbResult", "RungResult", "climb", "read_climb", "rung_folder"]
