"""``agentladder serve``: a thin shell over :func:`agentladder.serve.load_state` and :func:`agentladder.serve.run`."""

from __future__ import annotations

from typing import Annotated

import typer

from agentladder.cli.errors import friendly_errors, stderr
from agentladder.errors import ConfigError
from agentladder.serve import load_state, run


def parse_adapters(specs: list[str]) -> dict[str, str]:
    """``NAME=PATH`` options as ``{NAME: PATH}`` (a clear error for a malformed or repeated one)."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--adapter {spec!r}: write NAME=PATH (a LoRA run folder)")
        if name in out:
            raise ConfigError(f"--adapter {name!r} is given twice")
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
) -> None:
    """Serve a base model and its LoRA specialists over the OpenAI API (see docs/serve.md)."""
    adapters = parse_adapters(adapter or [])
    stderr.print(f"loading {model}" + (f" with {', '.join(adapters)}" if adapters else ""))
    state = load_state(model, adapters=adapters, embeddings=embeddings, dtype=dtype,
                       served_model_name=served_model_name, max_model_len=max_model_len, max_batch=max_batch,
                       max_prefill_tokens=max_prefill_tokens, default_max_tokens=default_max_tokens)
    names = [state.served.name, *state.served.specialists] + ([state.embedder.name] if state.embedder else [])
    stderr.print(f"[green]serving[/] {', '.join(names)} on http://{host}:{port}/v1")
    run(state, host=host, port=port, log_level=log_level, shutdown_timeout=shutdown_timeout)


__all__ = ["parse_adapters", "serve_command"]
