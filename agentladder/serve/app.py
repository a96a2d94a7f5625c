"""The server: a FastAPI app over one base model, its specialists and the continuous-batching worker.

:func:`load_state` loads what ``agentladder serve`` serves (the base model, each
``--adapter NAME=PATH``, the embedding model, each ``--classifier NAME=PATH``); :func:`create_app` puts the routes in
front of it (:mod:`~agentladder.serve.routes`, :mod:`~agentladder.serve.admin`), with
errors in the OpenAI shape (:mod:`~agentladder.serve.errors`) and the gateway's hooks
(:mod:`~agentladder.serve.hooks`); :func:`run` serves it with uvicorn.

The scheduler's worker starts with the app and stops after it: on SIGTERM (or
Ctrl-C) uvicorn stops accepting connections, waits for the requests in flight to
finish, streams included (at most ``shutdown_timeout`` seconds), then the worker ends
and the process exits.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import uvicorn
from fastapi import FastAPI

from agentladder.errors import ConfigError
from agentladder.serve import admin, errors, routes
from agentladder.serve.classify import ServedClassifier, load_classifiers
from agentladder.serve.embeddings import Embedder
from agentladder.serve.hooks import Gateway, ServerHooks
from agentladder.serve.metrics import Metrics
from agentladder.serve.scheduler import Scheduler
from agentladder.serve.specialists import Served
from agentladder.serve.structured import Structured

log = logging.getLogger("agentladder.serve")


class ServerState:
    """Everything the routes share: the models, the worker, grammars, metrics, hooks.

    ``default_max_tokens`` caps a request that sets no ``max_tokens`` (None: the room left
    in the context, as vLLM does).
    """

    def __init__(self, served: Served, *, embedder: Embedder | None = None, hooks: Gateway | None = None,
                 max_batch: int = 32, max_prefill_tokens: int = 8192, default_max_tokens: int | None = None,
                 classifiers: Mapping[str, ServedClassifier] | None = None):
        self.served = served
        self.embedder = embedder
        self.classifiers: dict[str, ServedClassifier] = dict(classifiers or {})
        taken = {served.name, *served.specialists, *([embedder.name] if embedder else [])}
        for name in self.classifiers:
            if name in taken:
                raise ConfigError(f"--classifier {name!r}: another served model has that name")
        self.hooks: Gateway = hooks or ServerHooks()
        self.scheduler = Scheduler(served.engine, max_len=served.max_len, max_batch=max_batch,
                                   max_prefill_tokens=max_prefill_tokens)
        vocab = getattr(served.engine.model.config, "vocab_size", None) or len(served.tokenizer)
        self.structured = Structured(served.tokenizer, vocab)
        self.metrics = Metrics(self.scheduler)
        self.default_max_tokens = default_max_tokens


def load_state(model: str, *, adapters: Mapping[str, str] | None = None, embeddings: str | None = None,
               dtype: str = "float32", device: str = "cpu", served_model_name: str | None = None,
               max_model_len: int | None = None, hooks: Gateway | None = None,
               classifiers: Mapping[str, str] | None = None, **options: Any) -> ServerState:
    """Load the base model, attach each adapter (name -> LoRA run folder), load the embedding model and
    each classifier (name -> classifier folder)."""
    served = Served(model, name=served_model_name, dtype=dtype, device=device, max_len=max_model_len)
    for name, path in (adapters or {}).items():
        served.attach(name, path)
    embedder = Embedder(embeddings) if embeddings else None
    return ServerState(served, embedder=embedder, hooks=hooks, classifiers=load_classifiers(dict(classifiers or {})),
                       **options)


def create_app(state: ServerState) -> FastAPI:
    """The FastAPI app serving ``state`` (the worker runs while the app does)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.scheduler.start()
        try:
            yield
        finally:
            state.scheduler.stop()

    app = FastAPI(title="agentladder", summary="OpenAI-compatible server for tuned specialists",
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = state
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(admin.router)
    return app


def run(state: ServerState, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
        shutdown_timeout: float | None = 120.0) -> None:
    """Serve until SIGTERM or Ctrl-C, then finish the requests in flight (see the module docstring)."""
    config = uvicorn.Config(create_app(state), host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=shutdown_timeout, access_log=log_level == "debug")
    uvicorn.Server(config).run()


__all__ = ["ServerState", "create_app", "load_state", "run"]
