"""``agentladder quickstart|climb|demo|recommend``: thin shells over the ladder's Python API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from agentladder.cli.errors import friendly_errors, stderr, stdout
from agentladder.cli.models import REGISTRY_HELP
from agentladder.errors import ConfigError
from agentladder.ladder.climb import ClimbResult, climb, decided_accuracy
from agentladder.ladder.quickstart import quickstart
from agentladder.ladder.recommend import recommend
from agentladder.ladder.resources import demo_ladder, shipped_ladders

SET_HELP = "Override a ladder field: key=value, dotted (rungs.sft.train.max_steps=10). Repeatable."


@friendly_errors
def quickstart_command(
    out: Annotated[str, typer.Option(help="Folder for the data, the run and the report.")] = "runs/quickstart",
    model: str = "smollm2-135m",
    train_rows: int = 400,
    test_rows: int = 50,
    steps: int = 60,
    batch_size: int = 4,
    quiet: bool = False,
) -> None:
    """The first rung on the embedded defaults: make data, LoRA-tune SmolLM2, compare it with its base."""
    result = quickstart(out, model=model, train_rows=train_rows, test_rows=test_rows, steps=steps,
                        batch_size=batch_size, progress=not quiet)
    stdout.print(result.report.table())
    stderr.print(f"[green]done[/]: model {result.run_dir}, report {result.report_dir / 'report.md'}")


def _run_climb(path: str, overrides: list[str] | None, registry: str | None, quiet: bool) -> None:
    started = time.perf_counter()
    try:
        result = climb(path, overrides=overrides, registry=registry, progress=not quiet, log=True)
    except KeyboardInterrupt:
        stderr.print("[yellow]interrupted[/]: finished rungs and checkpoints are kept; run the same command again "
                     "to resume")
        raise typer.Exit(130) from None
    _print_climb(result, started)


def _print_climb(result: ClimbResult, started: float) -> None:
    stdout.print(result.table())
    stderr.print(f"[green]done[/]: report {result.report_dir / 'ladder.md'}, plot {result.report_dir / 'ladder.png'}; "
                 f"wall time {time.perf_counter() - started:.0f} s")


@friendly_errors
def climb_command(
    ladder: Annotated[str, typer.Argument(
        help="Ladder YAML file, or the name of a shipped ladder (log-triage, medication, smoke).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    registry: Annotated[str | None, typer.Option(help=REGISTRY_HELP)] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars (one line per rung still shows).")] = False,
) -> None:
    """Climb a ladder: baseline -> sft -> dpo -> rl (or a classifier), each rung scored and gated; rerun to resume."""
    if not Path(ladder).exists() and ladder in shipped_ladders():
        ladder = str(shipped_ladders()[ladder])
        stderr.print(f"climbing {ladder}")
    _run_climb(ladder, set_, registry, quiet)


@friendly_errors
def demo_command(
    out: Annotated[str | None, typer.Option(help="Folder of the climb \\[default: runs/demo].")] = None,
    smoke: Annotated[bool, typer.Option(help="The same climb on the tiny random model, in seconds (wiring only).")] = False,
    full: Annotated[bool, typer.Option(
        help="The longer recipe: ten times the fresh data for the preference and RL rungs (about two hours on 2 cores).")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    registry: Annotated[str | None, typer.Option(help=REGISTRY_HELP)] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars (one line per rung still shows).")] = False,
) -> None:
    """The whole ladder on the embedded defaults: SmolLM2-135M on medication directions, baseline to RL."""
    if smoke and full:
        raise ConfigError("choose --smoke or --full, not both")
    path = demo_ladder("smoke" if smoke else "medication-full" if full else "medication")
    overrides = list(set_ or []) + ([f"out_dir={out}"] if out else [])
    stderr.print(f"climbing {path}" + (f" with {', '.join(overrides)}" if overrides else ""))
    _run_climb(str(path), overrides, registry, quiet)


@friendly_errors
def recommend_command(
    accuracy: Annotated[float | None, typer.Option(
        help="Current accuracy on your validation split (never the test split you report), a share (0.78).")] = None,
    target: Annotated[float | None, typer.Option(help="The accuracy you need, a share (0.95).")] = None,
    from_climb: Annotated[str | None, typer.Option(
        "--climb", help="A climb's folder: its champion's accuracy on the validation split, and its target.")] = None,
    labeled: Annotated[int, typer.Option(help="Labelled examples (input with its right answer).")] = 0,
    pairs: Annotated[int, typer.Option(help="Preference pairs (chosen and rejected answers).")] = 0,
    trajectories: Annotated[int, typer.Option(help="Further prompts or reasoning trajectories for RL.")] = 0,
    checks: Annotated[bool, typer.Option("--checks/--no-checks", help="You can verify an answer by code.")] = False,
    judge: Annotated[bool, typer.Option("--judge/--no-judge", help="You have an LLM judge with a rubric.")] = False,
    task: Annotated[str, typer.Option(help="Task name used in the suggested commands.")] = "medication-directions",
    component: Annotated[str, typer.Option(
        help="The component's type: classification, extraction, generation or retrieval.")] = "generation",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The next rung and the data it needs, from your data, accuracy and target (the phased approach)."""
    if from_climb:
        decided, goal = decided_accuracy(from_climb)
        accuracy = decided if accuracy is None else accuracy
        target = goal if target is None else target
    if accuracy is None or target is None:
        raise ConfigError("give --accuracy and --target (shares, measured on a validation split), or --climb DIR")
    rec = recommend(accuracy=accuracy, target=target, labeled=labeled, pairs=pairs, trajectories=trajectories,
                    checks=checks, judge=judge, task=task, component=component)
    if as_json:
        stdout.print_json(json.dumps(rec.to_json()))
    else:
        stdout.print(rec.text(), highlight=False)


__all__ = ["climb_command", "demo_command", "quickstart_command", "recommend_command"]
