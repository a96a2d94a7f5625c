"""``agentladder traces ...``: list, show and export what the agents runtime stored; the review queue from a shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from agentladder.agents.export import export_traces, select
from agentladder.agents.review import ReviewQueue
from agentladder.agents.store import DEFAULT_DB_ENV, Store, default_db
from agentladder.cli.errors import friendly_errors, stderr, stdout
from agentladder.errors import ConfigError, MissingFileError

traces_app = typer.Typer(no_args_is_help=True, help="Traces of the agents runtime: list, show, export as training data.")

DbOption = Annotated[str | None, typer.Option(
    "--db", help=f"The runtime's SQLite store \\[default: ${DEFAULT_DB_ENV} or ./agentladder.db].")]


def _open(db: str | None) -> Store:
    path = db or default_db()
    if not Path(path).exists():
        raise MissingFileError(f"no trace store at {path}; run an agent first, or pass --db")
    return Store(path)


def _short(value: object, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@traces_app.command("list")
@friendly_errors
def list_cmd(db: DbOption = None,
             where: Annotated[str | None, typer.Option(help='Filter, e.g. "score >= 1 and agent == parser".')] = None,
             limit: Annotated[int, typer.Option(help="Show the newest N.")] = 20) -> None:
    """The stored trajectories, newest last."""
    store = _open(db)
    rows = select(store, where)
    table = Table("agent", "model", "status", "session", "step", "turns", "rewards", "output")
    table.columns.insert(0, Column("id", no_wrap=True, overflow="fold"))
    for r in rows[-limit:]:
        conv = r["conversation"]
        table.add_row(r["id"], r["agent"], r["model"] or "", r["status"], r["session"] or "", r["step"] or "",
                      str(len(conv.messages)), _short(conv.rewards, 24), _short(conv.metadata.get("output", ""), 40))
    stdout.print(table)
    stderr.print(f"{len(rows)} trajectories match in {store.path}")


@traces_app.command("show")
@friendly_errors
def show_cmd(trajectory: Annotated[str, typer.Argument(help="A trajectory id (from `traces list`).")],
             db: DbOption = None) -> None:
    """One trajectory: its turns (trainable ones marked) and the spans of its agent run."""
    store = _open(db)
    try:
        conv = store.trajectory(trajectory)
    except KeyError as e:  # no such trajectory
        raise ConfigError(str(e.args[0])) from None
    stdout.print(f"[bold]{conv.id}[/]  rewards {json.dumps(conv.rewards)}")
    stdout.print(f"metadata {json.dumps(conv.metadata, ensure_ascii=False)}", highlight=False, soft_wrap=True)
    for m in conv.messages:
        mark = "[green]trained[/]" if m.is_trained else "[dim]context[/]"
        body = m.content or ""
        if m.tool_calls:
            body += " ".join(f"-> {c.name}({json.dumps(c.arguments)})" for c in m.tool_calls)
        stdout.print(f"[bold]{m.role}[/] {mark}: {body}", highlight=False, soft_wrap=True)
    spans = [s for s in store.spans() if s["attributes"].get("agentladder.trajectory.id") == trajectory]
    if spans:
        trace = store.spans(trace_id=spans[0]["trace_id"])
        table = Table("span", "ms", "status", "tokens in/out")
        for s in trace:
            a = s["attributes"]
            ms = (s["end_ns"] - s["start_ns"]) / 1e6 if s["end_ns"] and s["start_ns"] else 0.0
            tokens = f"{a.get('gen_ai.usage.input_tokens', '')}/{a.get('gen_ai.usage.output_tokens', '')}"
            table.add_row(s["name"], f"{ms:.1f}", s["status"], tokens if tokens != "/" else "")
        stdout.print(table)


@traces_app.command("export")
@friendly_errors
def export_cmd(
    to: Annotated[str, typer.Option(help="sft, preference or rl.")],
    out: Annotated[str, typer.Option(help="JSONL file to write (atomically).")],
    db: DbOption = None,
    where: Annotated[str | None, typer.Option(help='Filter, e.g. "score >= 1".')] = None,
    score: Annotated[str, typer.Option(help="The reward that ranks preference pairs.")] = "score",
) -> None:
    """Write stored trajectories as SFT rows, preference pairs or RL prompts."""
    store = _open(db)
    counts = export_traces(store, to, out, where=where, score=score)
    stderr.print(f"[green]done[/]: {counts['matched']} trajectories matched, {counts['written']} {to} rows -> {out}")


@traces_app.command("spans")
@friendly_errors
def spans_cmd(db: DbOption = None, session: Annotated[str | None, typer.Option()] = None,
              limit: int = 50) -> None:
    """The newest spans, with their GenAI attributes."""
    store = _open(db)
    rows = store.spans(session=session)[-limit:]
    table = Table("trace", "span", "ms", "status", "attributes")
    for s in rows:
        ms = (s["end_ns"] - s["start_ns"]) / 1e6 if s["end_ns"] and s["start_ns"] else 0.0
        attrs = {k.removeprefix("gen_ai."): v for k, v in s["attributes"].items()
                 if k.startswith(("gen_ai.usage", "gen_ai.request.model", "gen_ai.tool.name", "error"))}
        table.add_row(s["trace_id"][:8], s["name"], f"{ms:.1f}", s["status"], _short(attrs, 60))
    stdout.print(table)


@traces_app.command("audit")
@friendly_errors
def audit_cmd(db: DbOption = None, session: Annotated[str | None, typer.Option()] = None,
              run: Annotated[str | None, typer.Option(help="A run id.")] = None) -> None:
    """The audit log of a session or a run, in order."""
    store = _open(db)
    table = Table("seq", "session", "run", "step", "event", "data")
    for a in store.audit_log(session=session, run_id=run):
        table.add_row(str(a["seq"]), a["session"] or "", a["run_id"] or "", a["step"] or "", a["event"],
                      _short(a["data"] or "", 60))
    stdout.print(table)


@traces_app.command("reviews")
@friendly_errors
def reviews_cmd(db: DbOption = None) -> None:
    """Reviews waiting for a person."""
    table = Table("review", "session", "run", "step", "reason", "payload")
    for r in ReviewQueue(_open(db)).pending():
        table.add_row(r.id, r.session, r.run_id, r.step, r.reason, _short(r.payload or "", 50))
    stdout.print(table)


@traces_app.command("decide")
@friendly_errors
def decide_cmd(review: Annotated[str, typer.Argument(help="A review id (from `traces reviews`).")],
               decision: Annotated[str, typer.Option(help="The decision: JSON, or plain text.")],
               reviewer: Annotated[str, typer.Option(help="Who decides (kept in the audit log).")] = "reviewer",
               note: Annotated[str | None, typer.Option()] = None, db: DbOption = None) -> None:
    """Decide a pending review; the paused run takes the decision as its step's output when resumed."""
    try:
        value = json.loads(decision)
    except json.JSONDecodeError:
        value = decision
    r = ReviewQueue(_open(db)).decide(review, value, reviewer=reviewer, note=note)
    stderr.print(f"[green]decided[/]: {r.id} (run {r.run_id}, step {r.step}); resume the run to carry on")


__all__ = ["traces_app"]
