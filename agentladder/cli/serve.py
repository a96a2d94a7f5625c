"""``agentladder serve``: a thin shell over :func:`agentladder.serve.load_state` and :func:`agentladder.serve.run`.

With ``--db`` the server is also a gateway (keys, limits, usage, recording:
:mod:`agentladder.serve.gateway`); with ``--guard`` every call goes through a guard policy
(:mod:`agentladder.serve.guard`; at the gateway a key's own policy comes first); with ``--engine vllm`` (or ``--upstream URL``) the
gateway sits in front of vLLM's server (or any OpenAI-compatible one) instead of the
in-process engine.
"""

from __future__ import annotations

from typing import Annotated

import typer

from agentladder.agents.store import Store, default_db
from agentladder.cli.errors import friendly_errors, stderr
from agentladder.errors import ConfigError
from agentladder.serve import Gateway, load_state, run
from agentladder.serve.gateway import (
    ProxyState,
    UpstreamProcess,
    open_db,
    run_proxy,
    vllm_command,
    vllm_env,
)
from agentladder.serve.gateway.db import redact
from agentladder.serve.guard import GuardGateway, GuardHooks, load_guard


def parse_adapters(specs: list[str], option: str = "--adapter", what: str = "a LoRA run folder") -> dict[str, str]:
    """``NAME=PATH`` options as ``{NAME: PATH}`` (a clear error for a malformed or repeated one)."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"{option} {spec!r}: write NAME=PATH ({what})")
        if name in out:
            raise ConfigError(f"{option} {name!r} is given twice")
        out[name.strip()] = path.strip()
    return out


@friendly_errors
def serve_command(
    model: Annotated[str, typer.Option(help="Base model: alias, folder or hub id.")] = "smollm2-135m",
    adapter: Annotated[list[str] | None, typer.Option(
        "--adapter", help="A specialist as NAME=PATH (a LoRA run folder of the base); repeat for several.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option(help="Most sequences decoded together.")] = 32,
    embeddings: Annotated[str | None, typer.Option(
        help="Serve /v1/embeddings with this model: all-MiniLM-L6-v2 (packaged) or a sentence-transformers folder.")] = None,
    dtype: Annotated[str, typer.Option(help="Weights' dtype: float32 or bfloat16.")] = "float32",
    served_model_name: Annotated[str | None, typer.Option(
        help="The base model's name in requests and /v1/models \\[default: --model].")] = None,
    max_model_len: Annotated[int | None, typer.Option(
        help="Context length (prompt and answer) \\[default: the model's].")] = None,
    default_max_tokens: Annotated[int | None, typer.Option(
        help="Cap for requests that set no max_tokens \\[default: the room left in the context].")] = None,
    max_prefill_tokens: Annotated[int, typer.Option(help="Most prompt tokens prefilled in one step.")] = 8192,
    shutdown_timeout: Annotated[float, typer.Option(
        help="Seconds SIGTERM waits for requests in flight before closing them.")] = 120.0,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
    db: Annotated[str | None, typer.Option(help="Be a gateway: keys, limits and usage in this store (a SQLite "
                                                "file or a postgresql:// URL); every /v1 call needs a key.")] = None,
    traces_db: Annotated[str | None, typer.Option(
        help="The runtime's store for recorded calls and spans (with --db) and guard audit rows (with --guard) \\[default: $AGENTLADDER_DB or "
             "./agentladder.db].")] = None,
    otlp_endpoint: Annotated[str | None, typer.Option(help="Also send the gateway's spans to this OTLP/HTTP "
                                                           "collector.")] = None,
    engine: Annotated[str, typer.Option(help="local (this process) or vllm (vLLM's server behind the gateway).")]
    = "local",
    upstream: Annotated[str | None, typer.Option(
        help="Put the gateway in front of this OpenAI-compatible server instead of loading a model.")] = None,
    vllm_port: Annotated[int, typer.Option(help="vLLM's own port, on the loopback (--engine vllm).")] = 8001,
    vllm_arg: Annotated[list[str] | None, typer.Option(help="An argument passed on to vLLM (repeat).")] = None,
    classifier: Annotated[list[str] | None, typer.Option(
        "--classifier", help="A classifier as NAME=PATH (a folder of `agentladder train classifier`), answering "
                             "/classify and chat with a label; repeat for several.")] = None,
    guard: Annotated[str | None, typer.Option(
        help="A guard policy (guard.yaml) for every call: personal data masked, denied topics and prompt "
             "injection refused; audit rows in --traces-db (docs/guardrails.md).")] = None,
) -> None:
    """Serve a base model and its LoRA specialists over the OpenAI API (see docs/serve.md)."""
    adapters = parse_adapters(adapter or [])
    classifiers = parse_adapters(classifier or [], "--classifier", "a classifier folder")
    if engine not in ("local", "vllm"):
        raise ConfigError(f"--engine {engine!r}: choose local or vllm")
    hooks: Gateway | None = None
    policy = load_guard(guard, progress=lambda m: stderr.print(f"[dim]{m}[/]")) if guard else None
    if db is not None:
        hooks = GuardGateway(open_db(db), store=Store(traces_db or default_db()), otlp_endpoint=otlp_endpoint,
                             provider_name="vllm" if engine == "vllm" else "agentladder", guard=policy)
        stderr.print(f"gateway: keys and usage in {redact(db)}, recorded calls and spans in {traces_db or default_db()}")
    elif policy is not None:
        hooks = GuardHooks(policy, audit=Store(traces_db or default_db()))
    if policy is not None:
        stderr.print(f"guard: policy {policy.name!r} on every call, audit rows in {traces_db or default_db()}")
    if (engine == "vllm" or upstream) and classifiers:
        raise ConfigError("--classifier serves from this process: it does not go with --engine vllm or --upstream")
    if engine == "vllm" or upstream:
        command = None if upstream else vllm_command(
            model, adapters, port=vllm_port, served_model_name=served_model_name, max_model_len=max_model_len,
            dtype=None if dtype == "float32" else dtype, extra=vllm_arg or [])
        serve_upstream(command, upstream or f"http://127.0.0.1:{vllm_port}", hooks, host=host, port=port,
                       log_level=log_level, shutdown_timeout=shutdown_timeout)
        return
    stderr.print(f"loading {model}" + (f" with {', '.join(adapters)}" if adapters else ""))
    state = load_state(model, adapters=adapters, embeddings=embeddings, dtype=dtype,
                       served_model_name=served_model_name, max_model_len=max_model_len, max_batch=max_batch,
                       max_prefill_tokens=max_prefill_tokens, default_max_tokens=default_max_tokens, hooks=hooks,
                       classifiers=classifiers)
    names = ([state.served.name, *state.served.specialists] + ([state.embedder.name] if state.embedder else [])
             + list(state.classifiers))
    stderr.print(f"[green]serving[/] {', '.join(names)} on http://{host}:{port}/v1")
    run(state, host=host, port=port, log_level=log_level, shutdown_timeout=shutdown_timeout)


def serve_upstream(command: list[str] | None, url: str, hooks: Gateway | None, *, host: str, port: int,
                   log_level: str, shutdown_timeout: float) -> None:
    """The gateway in front of the server at ``url``, started first from ``command`` when given (vLLM)."""
    process = None
    if command is not None:
        stderr.print(f"starting vLLM: {' '.join(command)}")
        process = UpstreamProcess(command, url, env=vllm_env()).start()
    try:
        stderr.print(f"[green]serving[/] the models of {url} on http://{host}:{port}/v1")
        run_proxy(ProxyState(url, hooks), host=host, port=port, log_level=log_level,
                  shutdown_timeout=shutdown_timeout)
    finally:
        if process is not None:
            process.stop()


__all__ = ["parse_adapters", "serve_command", "serve_upstream"]
