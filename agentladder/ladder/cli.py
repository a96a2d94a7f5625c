"""``agentladder climb``, ``demo``, ``recommend`` and ``models show/compare/export`` (thin shells over the Python API)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True)
stdout = Console()

_REGISTRY_HELP = "Registry file \\[default: $AGENTLADDER_DB, else agentladder.db]."
_SET_HELP = "Override a ladder field: key=value, dotted (rungs.sft.train.max_steps=10). Repeatable."


def _run_climb(path, overrides, registry, quiet: bool) -> None:
    from agentladder.ladder.climb import climb

    started = time.perf_counter()
    try:
        result = climb(path, overrides=overrides, registry=registry, progress=not quiet, log=True)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: finished rungs and checkpoints are kept; run the same command again "
                  "to resume")
        raise typer.Exit(130) from None
    _print_climb(result, started)


def _print_climb(result, started: float) -> None:
    stdout.print(result.table())
    err.print(f"[green]done[/]: report {result.report_dir / 'ladder.md'}, plot {result.report_dir / 'ladder.png'}; "
              f"wall time {time.perf_counter() - started:.0f} s")


def climb_command(
    ladder: Annotated[str, typer.Argument(help="Ladder YAML file.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help=_SET_HELP)] = None,
    registry: Annotated[str | None, typer.Option(help=_REGISTRY_HELP)] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars (one line per rung still shows).")] = False,
) -> None:
    """Climb a ladder: baseline -> sft -> dpo -> rl, each rung scored and gated; rerun to resume."""
    _run_climb(ladder, set_, registry, quiet)


def demo_command(
    out: Annotated[str | None, typer.Option(help="Folder of the climb \\[default: runs/demo].")] = None,
    smoke: Annotated[bool, typer.Option(help="The same climb on the tiny random model, in seconds (wiring only).")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help=_SET_HELP)] = None,
    registry: Annotated[str | None, typer.Option(help=_REGISTRY_HELP)] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars (one line per rung still shows).")] = False,
) -> None:
    """The whole ladder on the embedded defaults: SmolLM2-135M on medication directions, baseline to RL."""
    from agentladder.ladder.resources import demo_ladder

    path = demo_ladder("smoke" if smoke else "medication")
    overrides = list(set_ or []) + ([f"out_dir={out}"] if out else [])
    err.print(f"climbing {path}" + (f" with {', '.join(overrides)}" if overrides else ""))
    _run_climb(path, overrides, registry, quiet)


def recommend_command(
    accuracy: Annotated[float, typer.Option(help="Current accuracy on your task, a share (0.78).")],
    target: Annotated[float, typer.Option(help="The accuracy you need, a share (0.95).")],
    labeled: Annotated[int, typer.Option(help="Labelled examples (input with its right answer).")] = 0,
    pairs: Annotated[int, typer.Option(help="Preference pairs (chosen and rejected answers).")] = 0,
    trajectories: Annotated[int, typer.Option(help="Further prompts or reasoning trajectories for RL.")] = 0,
    checks: Annotated[bool, typer.Option("--checks/--no-checks", help="You can verify an answer by code.")] = False,
    judge: Annotated[bool, typer.Option("--judge/--no-judge", help="You have an LLM judge with a rubric.")] = False,
    task: Annotated[str, typer.Option(help="Task name used in the suggested commands.")] = "medication-directions",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The next rung and the data it needs, from your data, accuracy and target (the phased approach)."""
    from agentladder.ladder.recommend import recommend

    rec = recommend(accuracy=accuracy, target=target, labeled=labeled, pairs=pairs, trajectories=trajectories,
                    checks=checks, judge=judge, task=task)
    if as_json:
        stdout.print_json(json.dumps(rec.to_json()))
    else:
        stdout.print(rec.text(), highlight=False)


# -- models ---------------------------------------------------------------------------------------
def print_versions(registry: str | None = None, ladder: str | None = None) -> None:
    """The registered versions as a table (nothing when the registry file does not exist)."""
    from pathlib import Path

    from agentladder.ladder.registry import Registry, default_registry

    path = registry or default_registry()
    if not Path(path).exists():
        stdout.print(f"[dim]no registered versions ({path} does not exist yet; agentladder climb makes them)[/]")
        return
    with Registry(path) as reg:
        versions = reg.list(ladder)
    if not versions:
        stdout.print(f"[dim]no registered versions in {path}[/]")
        return
    table = Table(title=f"registered versions ({path}); score: the ladder's gate metric", title_justify="left")
    table.add_column("version", no_wrap=True)
    table.add_column("parent", overflow="fold")
    for col in ("score", "status", "examples", "train s"):
        table.add_column(col, justify="left" if col == "status" else "right")
    for v in versions:
        table.add_row(v.id, v.parent or "-", "-" if v.score is None else f"{v.score:.3f}", v.status, _n(v.examples),
                      "-" if v.train_seconds is None else f"{v.train_seconds:.0f}")
    stdout.print(table)


def _n(x) -> str:
    return "-" if x is None else str(x)


def models_show(
    version: Annotated[str, typer.Argument(help="Version id, unique prefix, or LADDER/RUNG (the newest).")],
    registry: Annotated[str | None, typer.Option(help=_REGISTRY_HELP)] = None,
) -> None:
    """One version: its lineage, settings, data, scores and where its weights are."""
    from agentladder.ladder.registry import Registry

    with Registry(registry) as reg:
        v = reg.get(version)
        chain = reg.lineage(v.id)
    stdout.print(f"[bold]{v.id}[/]  ({v.kind}, {v.status})", highlight=False)
    stdout.print("lineage: " + " -> ".join(c.id for c in chain), highlight=False)
    for key in ("path", "artifact", "base_model", "task", "data_path", "data_hash", "examples", "tokens",
                "train_seconds"):
        stdout.print(f"{key}: {getattr(v, key)}", highlight=False)
    stdout.print(f"created: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(v.created))}")
    table = Table(title="metrics [95 % CI]", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, m in v.metrics.items():
        if isinstance(m, dict) and "value" in m:
            table.add_row(name, _metric(m))
    stdout.print(table)
    stdout.print("config: " + json.dumps(v.config, default=str), highlight=False, soft_wrap=True)
    if v.notes:
        stdout.print("notes: " + json.dumps(v.notes, default=str), highlight=False, soft_wrap=True)


def _metric(m: dict) -> str:
    if m.get("value") is None:
        return "n/a"
    low, high = (m.get("ci") or [None, None])[:2]
    return f"{m['value']:.3f}" + ("" if low is None or high is None else f" [{low:.3f}, {high:.3f}]")


def models_compare(
    versions: Annotated[list[str], typer.Argument(help="Two or more versions.")],
    registry: Annotated[str | None, typer.Option(help=_REGISTRY_HELP)] = None,
) -> None:
    """Versions side by side: every metric, training time, tokens and examples."""
    from agentladder.ladder.registry import Registry

    with Registry(registry) as reg:
        names, found = reg.compare(versions)
    table = Table(title="comparison [95 % CI]", title_justify="left")
    table.add_column("figure", style="bold")
    for v in found:
        table.add_column(v.id, justify="right", overflow="fold")
    for name in names:
        table.add_row(name, *[_metric(v.metrics[name]) if name in v.metrics else "-" for v in found])
    for key in ("kind", "parent", "status", "examples", "tokens", "train_seconds"):
        table.add_row(key, *[_n(getattr(v, key)) for v in found])
    stdout.print(table)


def models_export(
    version: Annotated[str, typer.Argument(help="Version id, unique prefix, or LADDER/RUNG.")],
    out: Annotated[str, typer.Option(help="Folder to write (must be new or empty).")],
    adapters: Annotated[bool, typer.Option(
        "--adapters/--merged", help="Only the LoRA adapter, or merged full weights.")] = False,
    registry: Annotated[str | None, typer.Option(help=_REGISTRY_HELP)] = None,
) -> None:
    """Write a version's model: merged full weights (default) or its LoRA adapter."""
    from agentladder.ladder.registry import Registry

    with Registry(registry) as reg:
        path = reg.export(version, out, merged=not adapters)
    err.print(f"[green]done[/]: {'adapter' if adapters else 'merged weights'} -> {path}")


def register(app: typer.Typer, models_app: typer.Typer, friendly_errors) -> None:
    app.command("climb")(friendly_errors(climb_command))
    app.command("demo")(friendly_errors(demo_command))
    app.command("recommend")(friendly_errors(recommend_command))
    models_app.command("show")(friendly_errors(models_show))
    models_app.command("compare")(friendly_errors(models_compare))
    models_app.command("export")(friendly_errors(models_export))


__all__ = ["print_versions", "register"]
