"""``agentladder models list|prepare|show|compare|export``: the built-in models and the registry's versions."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agentladder.cli.errors import friendly_errors, stderr, stdout
from agentladder.ladder.registry import Registry, default_registry
from agentladder.models.loading import ALIASES, TINY_ALIAS, materialise_packaged

models_app = typer.Typer(no_args_is_help=True, help="The models agentladder can load.")

REGISTRY_HELP = "Registry file \\[default: $AGENTLADDER_DB, else agentladder.db]."


@models_app.command("list")
def models_list(
    registry: Annotated[str | None, typer.Option(help=REGISTRY_HELP)] = None,
    ladder: Annotated[str | None, typer.Option(help="Only this ladder's versions.")] = None,
) -> None:
    """The built-in model aliases, then every registered version with its lineage and score."""
    for name, entry in ALIASES.items():
        stdout.print(f"{name:16} {entry.description}")
    stdout.print(f"{TINY_ALIAS:16} tiny random Llama with a byte-level tokenizer (tests and dry runs)")
    print_versions(registry, ladder)


@models_app.command("prepare")
@friendly_errors
def models_prepare(name: str = "smollm2-135m", force: bool = False) -> None:
    """Convert a packaged model into the cache once (later loads take a second)."""
    path = materialise_packaged(name, force=force)
    stdout.print(f"{name} ready at {Path(path)}")


def print_versions(registry: str | None = None, ladder: str | None = None) -> None:
    """The registered versions as a table (nothing when the registry file does not exist)."""
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


def _metric(m: dict) -> str:
    if m.get("value") is None:
        return "n/a"
    low, high = (m.get("ci") or [None, None])[:2]
    return f"{m['value']:.3f}" + ("" if low is None or high is None else f" [{low:.3f}, {high:.3f}]")


@models_app.command("show")
@friendly_errors
def models_show(
    version: Annotated[str, typer.Argument(help="Version id, unique prefix, or LADDER/RUNG (the newest).")],
    registry: Annotated[str | None, typer.Option(help=REGISTRY_HELP)] = None,
) -> None:
    """One version: its lineage, settings, data, scores and where its weights are."""
    with Registry(registry) as reg:
        v = reg.get(version)
        chain = reg.lineage(v.id)
    stdout.print(f"[bold]{v.id}[/]  ({v.kind}, {v.status})", highlight=False)
    stdout.print("lineage: " + " -> ".join(c.id for c in chain), highlight=False)
    for key in ("path", "artifact", "base_model", "task", "data_path", "data_hash", "examples", "tokens",
                "train_seconds"):
        stdout.print(f"{key}: {getattr(v, key)}", highlight=False)
    stdout.print(f"created: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(v.created))}")
    decided = v.decided_on.get("split")
    table = Table(title="metrics [95 % CI]" + (f"; decided on {decided}" if decided else ""), title_justify="left")
    table.add_column("metric")
    table.add_column(decided or "value", justify="right")
    reported = {name: rec.get("metrics", {}) for name, rec in v.reported_on.items()}
    for split in reported:
        table.add_column(f"{split} (reported)", justify="right")
    for name, m in v.metrics.items():
        if isinstance(m, dict) and "value" in m:
            table.add_row(name, _metric(m), *[_metric(r[name]) if name in r else "-" for r in reported.values()])
    stdout.print(table)
    for split, rec in v.reported_on.items():
        if rec.get("paired"):
            t = rec["paired"]
            stdout.print(f"{split}: against its parent on the same {t['n']} rows, +{t['gained']} -{t['lost']}, "
                         f"McNemar p {t['p']:.3g}", highlight=False)
    stdout.print("config: " + json.dumps(v.config, default=str), highlight=False, soft_wrap=True)
    if v.notes:
        stdout.print("notes: " + json.dumps(v.notes, default=str), highlight=False, soft_wrap=True)


@models_app.command("compare")
@friendly_errors
def models_compare(
    versions: Annotated[list[str], typer.Argument(help="Two or more versions.")],
    registry: Annotated[str | None, typer.Option(help=REGISTRY_HELP)] = None,
) -> None:
    """Versions side by side: every metric, training time, tokens and examples."""
    with Registry(registry) as reg:
        names, found = reg.compare(versions)
    table = Table(title="comparison [95 % CI]", title_justify="left")
    table.add_column("figure", style="bold")
    for v in found:
        table.add_column(v.id, justify="right", overflow="fold")
    for name in names:
        table.add_row(name, *[_metric(v.metrics[name]) if name in v.metrics else "-" for v in found])
    splits = [s for v in found for s in v.reported_on]
    for split in dict.fromkeys(splits):
        for name in names:
            table.add_row(f"{name} ({split})", *[_metric(v.reported_on[split]["metrics"][name])
                                                 if name in v.reported_on.get(split, {}).get("metrics", {}) else "-"
                                                 for v in found])
    for key in ("kind", "parent", "status", "examples", "tokens", "train_seconds"):
        table.add_row(key, *[_n(getattr(v, key)) for v in found])
    stdout.print(table)


@models_app.command("export")
@friendly_errors
def models_export(
    version: Annotated[str, typer.Argument(help="Version id, unique prefix, or LADDER/RUNG.")],
    out: Annotated[str, typer.Option(help="Folder to write (must be new or empty).")],
    adapters: Annotated[bool, typer.Option(
        "--adapters/--merged", help="Only the LoRA adapter, or merged full weights.")] = False,
    registry: Annotated[str | None, typer.Option(help=REGISTRY_HELP)] = None,
) -> None:
    """Write a version's model: merged full weights (default) or its LoRA adapter."""
    with Registry(registry) as reg:
        path = reg.export(version, out, merged=not adapters)
    stderr.print(f"[green]done[/]: {'adapter' if adapters else 'merged weights'} -> {path}")


__all__ = ["models_app", "print_versions"]
