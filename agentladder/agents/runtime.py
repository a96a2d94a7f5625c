"""The runtime: where runs persist (a SQLite store) and where their spans go, plus the current run's context.

A :class:`Runtime` is created once and shared; agents, workflows and graphs
find it through the current :class:`RunContext` (a context variable, so it
follows async tasks and worker threads), or use the default runtime
(``agentladder.db`` in the current folder, or ``$AGENTLADDER_DB``).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter

from agentladder.agents.store import Store
from agentladder.agents.tracing import make_tracer_provider


class Runtime:
    """A store for sessions, reviews, the audit log, trajectories and spans, and the tracer writing to it.

    ``db`` is a path, ``":memory:"`` or a :class:`Store`; ``otlp_endpoint`` also sends spans to an
    OTLP/HTTP collector; ``span_exporters`` adds any OpenTelemetry exporter (tests use the SDK's
    ``InMemorySpanExporter``).
    """

    def __init__(self, db: str | os.PathLike | Store | None = None, *, otlp_endpoint: str | None = None,
                 span_exporters: Sequence[SpanExporter] = (), service_name: str = "agentladder"):
        self.store = db if isinstance(db, Store) else Store(db)
        self.tracer_provider = make_tracer_provider(self.store, otlp_endpoint=otlp_endpoint,
                                                    exporters=span_exporters, service_name=service_name)
        self.tracer = self.tracer_provider.get_tracer("agentladder.agents")

    def session(self, session_id: str) -> Session:
        return Session(self.store, session_id)

    def shutdown(self) -> None:
        """Flush spans (an OTLP exporter batches them) and close the store."""
        self.tracer_provider.shutdown()
        self.store.close()


class Session:
    """One session's key-value state. It reads and writes only its own keys: sessions never see each other's."""

    def __init__(self, store: Store, session_id: str):
        self.id = session_id
        self._store = store

    def get(self, key: str, default: Any = None) -> Any:
        return self._store.state_get(self.id, key, default)

    def set(self, key: str, value: Any) -> None:
        self._store.state_set(self.id, key, value)

    def all(self) -> dict[str, Any]:
        return self._store.state_all(self.id)


_default: Runtime | None = None
_default_lock = threading.Lock()


def default_runtime() -> Runtime:
    """The process's default runtime, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Runtime()
        return _default


def set_default_runtime(runtime: Runtime | None) -> None:
    global _default
    with _default_lock:
        _default = runtime


@dataclass
class RunContext:
    """Who is running: the runtime, the session, the workflow run and step (if any)."""

    runtime: Runtime
    session: str
    run_id: str | None = None
    step: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("agentladder_run", default=None)


def current() -> RunContext | None:
    return _current.get()


@contextmanager
def use_context(ctx: RunContext) -> Iterator[RunContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
