"""``agentladder tools ...``: list tools (a file's, an MCP server's, a signed endpoint's), serve a file's tools, keys.

.. code-block:: bash

    agentladder tools list --mcp "python -m formulary_server"         # name, description, input schema
    agentladder tools list examples/pharmacy/tools.py
    agentladder tools serve examples/pharmacy/tools.py --port 9000    # MCP over streamable HTTP at /mcp
    agentladder tools serve examples/pharmacy/tools.py --stdio        # MCP over stdin and stdout
    agentladder tools serve examples/pharmacy/tools.py --signed --port 9100   # signed stateless endpoint
    agentladder tools keys add | rotate --grace 3600 | retire KEY_ID | list

A tools file is a Python file: its ``__tools__`` list (or else every tool and agent
it defines at module level) is served, and the tools in its ``__jobs__`` list run as
jobs of a queue on the runtime's store (``--db``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.table import Table

from agentladder.agents import (
    Agent,
    JobQueue,
    KeyRing,
    Runtime,
    Tool,
    mcp_tools,
    serve_mcp,
    signed_tools,
)
from agentladder.agents.signed import signed_app
from agentladder.agents.store import DEFAULT_DB_ENV, default_db
from agentladder.agents.tools import as_tool
from agentladder.cli.errors import friendly_errors, stderr, stdout
from agentladder.errors import ConfigError, MissingFileError

tools_app = typer.Typer(no_args_is_help=True, help="Tools: list them (local, MCP, signed), serve them over MCP or "
                                                   "signed HTTP, manage signing keys.")

DbOption = Annotated[str | None, typer.Option(
    "--db", help=f"The runtime's SQLite store (jobs, keys, traces) \\[default: ${DEFAULT_DB_ENV} or ./agentladder.db].")]


def load_tools(path: str, queue: JobQueue | None = None) -> list[Tool]:
    """The tools a file offers (``__tools__``, or every module-level tool and agent); ``__jobs__`` run as jobs."""
    file = Path(path)
    if not file.is_file():
        raise MissingFileError(f"no tools file at {path}")
    sys.path.insert(0, str(file.resolve().parent))
    spec = importlib.util.spec_from_file_location(f"agentladder_tools_{file.stem}", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise ConfigError(f"{path}: cannot load it: {type(err).__name__}: {err}") from err
    found = getattr(module, "__tools__", None)
    if found is None:
        found = [v for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, (Tool, Agent))]
    tools = [as_tool(t) for t in found]
    jobs = {as_tool(t).name for t in getattr(module, "__jobs__", [])}
    if jobs and queue is None:
        raise ConfigError(f"{path}: __jobs__ needs a job queue")
    if not tools:
        raise ConfigError(f"{path}: no tools (define __tools__, or tools and agents at module level)")
    return [queue.add(t) if t.name in jobs and queue is not None else t for t in tools]


def _show(tools: list[Tool], as_json: bool) -> None:
    rows = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]
    if as_json:
        stdout.print_json(json.dumps(rows))
        return
    table = Table("name", "description", "input schema", show_lines=True)
    for r in rows:
        table.add_row(r["name"], r["description"] or "", json.dumps(r["input_schema"], indent=1))
    stdout.print(table)


def _headers(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        if ":" not in v:
            raise ConfigError(f"--header {v!r}: write NAME:VALUE")
        name, value = v.split(":", 1)
        out[name.strip()] = value.strip()
    return out


@tools_app.command("list")
@friendly_errors
def list_cmd(file: Annotated[str | None, typer.Argument(help="A tools file (Python).")] = None,
             mcp: Annotated[str | None, typer.Option(help="An MCP server: a URL or a command line.")] = None,
             header: Annotated[list[str], typer.Option(help="NAME:VALUE header for an HTTP server.")] = [],  # noqa: B006
             signed: Annotated[str | None, typer.Option(help="A signed endpoint's URL (with --key, --key-id).")] = None,
             key: Annotated[str | None, typer.Option(help="Signing secret for --signed.")] = None,
             key_id: Annotated[str | None, typer.Option(help="Signing key id for --signed.")] = None,
             as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Each tool's name, description and input schema."""
    if sum(x is not None for x in (file, mcp, signed)) != 1:
        raise ConfigError("give one of: a tools file, --mcp SERVER, --signed URL")
    if mcp is not None:
        tools: list[Tool] = list(mcp_tools(mcp, headers=_headers(header)))
    elif signed is not None:
        if not key or not key_id:
            raise ConfigError("--signed needs --key and --key-id")
        tools = list(signed_tools(signed, key=key, key_id=key_id))
    else:
        tools = load_tools(file, JobQueue(":memory:"))
    _show(tools, as_json)
    stderr.print(f"{len(tools)} tools")


@tools_app.command("serve")
@friendly_errors
def serve_cmd(file: Annotated[str, typer.Argument(help="A tools file (Python).")],
              port: Annotated[int, typer.Option(help="Port to listen on (HTTP).")] = 9000,
              host: Annotated[str, typer.Option(help="Address to listen on (HTTP).")] = "127.0.0.1",
              path: Annotated[str, typer.Option(help="The MCP endpoint's path (HTTP).")] = "/mcp",
              stdio: Annotated[bool, typer.Option(help="Serve MCP over stdin and stdout instead of HTTP.")] = False,
              signed: Annotated[bool, typer.Option(help="Serve the signed stateless endpoint instead of MCP.")] = False,
              job_lease: Annotated[float, typer.Option(
                  help="Seconds after which a job whose server stopped beating is run again.")] = 10.0,
              db: DbOption = None) -> None:
    """Serve a file's tools and agents over MCP (streamable HTTP or stdio) or as a signed endpoint."""
    runtime = Runtime(db or default_db())
    tools = load_tools(file, JobQueue(runtime, lease=job_lease, heartbeat=min(1.0, job_lease / 4)))
    where = "stdio" if stdio else f"http://{host}:{port}{'' if signed else path}"
    stderr.print(f"serving {len(tools)} tools ({', '.join(t.name for t in tools)}) "
                 f"{'signed ' if signed else 'over MCP '}on {where}; store {runtime.store.path}")
    if signed:
        if not KeyRing(runtime.store).valid():
            raise ConfigError(f"no signing key in {runtime.store.path}: run `agentladder tools keys add --db ...`")
        uvicorn.run(signed_app(tools, runtime=runtime), host=host, port=port, log_level="warning")
    else:
        serve_mcp(tools, transport="stdio" if stdio else "http", host=host, port=port, path=path, runtime=runtime)
    runtime.shutdown()


keys_app = typer.Typer(no_args_is_help=True, help="Signing keys of a signed endpoint (in the runtime's store).")
tools_app.add_typer(keys_app, name="keys")


def _keys(db: str | None) -> KeyRing:
    return KeyRing(Runtime(db or default_db()).store)


@keys_app.command("add")
@friendly_errors
def keys_add(key_id: Annotated[str | None, typer.Option(help="The new key's id.")] = None, db: DbOption = None) -> None:
    """Add a key; prints its id and secret (give them to the callers)."""
    kid, secret = _keys(db).add(key_id)
    stdout.print_json(json.dumps({"key_id": kid, "secret": secret}))


@keys_app.command("rotate")
@friendly_errors
def keys_rotate(grace: Annotated[float, typer.Option(help="Seconds the current keys stay valid.")] = 3600.0,
                db: DbOption = None) -> None:
    """A new key; the current ones stay valid for --grace seconds (two keys at once)."""
    kid, secret = _keys(db).rotate(grace=grace)
    stdout.print_json(json.dumps({"key_id": kid, "secret": secret, "old_keys_valid_for_seconds": grace}))


@keys_app.command("retire")
@friendly_errors
def keys_retire(key_id: str, grace: Annotated[float, typer.Option(help="Seconds it stays valid.")] = 0.0,
                db: DbOption = None) -> None:
    """Stop accepting a key (after --grace seconds)."""
    _keys(db).retire(key_id, grace=grace)
    stderr.print(f"{key_id} retired")


@keys_app.command("list")
@friendly_errors
def keys_list(db: DbOption = None) -> None:
    """The keys valid now (ids only)."""
    for kid in _keys(db).valid():
        stdout.print(kid)


__all__ = ["load_tools", "tools_app"]
