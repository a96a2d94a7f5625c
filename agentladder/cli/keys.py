"""``agentladder keys create|list|revoke`` and ``agentladder usage``: the gateway's keys and chargeback."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agentladder.agents.guard import load_policy
from agentladder.agents.store import DEFAULT_DB_ENV, default_db
from agentladder.cli.errors import friendly_errors, stderr, stdout
from agentladder.errors import ConfigError
from agentladder.serve.gateway import create_key, list_keys, open_db, report, revoke_key
from agentladder.serve.gateway.db import redact
from agentladder.serve.gateway.usage import GROUPS, parse_day

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the gateway (agentladder serve --db): create, list, revoke.")

GatewayDbOption = Annotated[str | None, typer.Option(
    "--db", help=f"The gateway's store: a SQLite file or a postgresql:// URL \\[default: ${DEFAULT_DB_ENV} or "
                 "./agentladder.db].")]


def _models(values: list[str] | None) -> list[str]:
    return [m.strip() for v in values or [] for m in v.split(",") if m.strip()] or ["*"]


def _when(ts: float | None) -> str:
    return "" if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


@keys_app.command("create")
@friendly_errors
def create_cmd(
    team: Annotated[str, typer.Option(help="The team the key's usage is charged to.")],
    models: Annotated[list[str] | None, typer.Option(
        "--models", help="Models it may call, comma-separated or repeated \\[default: all].")] = None,
    name: Annotated[str | None, typer.Option(help="A name to find the key by (unique).")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute \\[default: no limit].")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute \\[default: no limit].")] = None,
    token_budget: Annotated[int | None, typer.Option(help="Tokens in all \\[default: no budget].")] = None,
    record: Annotated[bool, typer.Option(help="Store each chat call as a trace (agentladder traces export).")] = False,
    admin: Annotated[bool, typer.Option(help="May load and unload adapters.")] = False,
    guard: Annotated[str | None, typer.Option(help="A guard policy for this key's calls (a path; docs/guardrails.md).")] = None,
    db: GatewayDbOption = None,
) -> None:
    """Create a key; its secret is printed once, on standard output, and only its hash is stored."""
    if guard is not None:  # checked now (file:line:field), kept as an absolute path for the server
        guard = str(Path(guard).resolve())
        load_policy(guard)
    store = open_db(db or default_db())
    secret, rec = create_key(store, team, models=_models(models), name=name, rpm=rpm, tpm=tpm,
                             token_budget=token_budget, record=record, admin=admin, guard=guard)
    print(secret)
    stderr.print(f"[green]created[/] {rec.id} for team {rec.team} ({', '.join(rec.models)}) in {redact(store.spec)}; "
                 "keep the secret above: it is not stored")


@keys_app.command("list")
@friendly_errors
def list_cmd(db: GatewayDbOption = None,
             all_: Annotated[bool, typer.Option("--all", help="Revoked keys too.")] = False) -> None:
    """The keys (never their secrets): team, models, limits, budget used."""
    store = open_db(db or default_db())
    table = Table("id", "name", "prefix", "team", "models", "rpm", "tpm", "budget", "used", "record", "created",
                  "revoked")
    keys = list_keys(store, include_revoked=all_)
    for k in keys:
        table.add_row(k.id, k.name or "", k.prefix + "…", k.team, ",".join(k.models), str(k.rpm or ""),
                      str(k.tpm or ""), str(k.token_budget or ""), str(k.tokens_used), "yes" if k.record else "",
                      _when(k.created), _when(k.revoked))
    stdout.print(table)
    stderr.print(f"{len(keys)} keys in {redact(store.spec)}")


@keys_app.command("revoke")
@friendly_errors
def revoke_cmd(key: Annotated[str, typer.Argument(help="The key's id, name or prefix (from `keys list`).")],
               db: GatewayDbOption = None) -> None:
    """Revoke a key: every later request with it gets a 401."""
    rec = revoke_key(open_db(db or default_db()), key)
    stderr.print(f"[green]revoked[/] {rec.id} (team {rec.team})")


@friendly_errors
def usage_command(
    by: Annotated[str, typer.Option(help=f"Group by: {', '.join(GROUPS)}.")] = "team",
    since: Annotated[str | None, typer.Option(help="From this day (YYYY-MM-DD, UTC) on.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this day (YYYY-MM-DD, UTC).")] = None,
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    db: GatewayDbOption = None,
) -> None:
    """Usage of the gateway's keys summed by key, team, model or day: the chargeback table."""
    if format not in ("table", "csv", "json"):
        raise ConfigError(f"--format {format!r}: choose table, csv or json")
    rows = report(open_db(db or default_db()), by, since=parse_day(since, "--since"),
                  until=parse_day(until, "--until"))
    if format == "json":
        print(json.dumps(rows, indent=2))
    elif format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [by, "requests"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        print(out.getvalue(), end="")
    else:
        table = Table(*(rows[0] if rows else [by, "requests"]))
        for r in rows:
            table.add_row(*(str(v) for v in r.values()))
        stdout.print(table)


__all__ = ["keys_app", "usage_command"]
