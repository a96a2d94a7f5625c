"""OpenTelemetry spans after the GenAI semantic conventions, stored in SQLite and sent to any OTLP endpoint.

Each :class:`~agentladder.agents.Runtime` owns a ``TracerProvider`` (not the
global one, so two runtimes in a process, or a test, never mix their spans).
Its spans go to the runtime's SQLite store (``agentladder traces spans``) and,
when an endpoint is given or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, to an
OTLP/HTTP collector (Jaeger, Tempo, Phoenix, Langfuse, ...).

Span names and attributes follow the GenAI conventions
(https://opentelemetry.io/docs/specs/semconv/gen-ai/):

- ``invoke_workflow {name}`` for a workflow or graph run, ``step {name}`` per step;
- ``invoke_agent {name}`` per agent run (``gen_ai.agent.name``, ``gen_ai.conversation.id``);
- ``chat {model}`` per model call: ``gen_ai.request.model``, ``gen_ai.response.model``,
  ``gen_ai.provider.name``, ``gen_ai.usage.input_tokens`` / ``output_tokens``,
  ``gen_ai.request.max_tokens``, ``gen_ai.request.temperature``, ``gen_ai.response.finish_reasons``;
- ``execute_tool {name}`` per tool call: ``gen_ai.tool.name``, ``gen_ai.tool.call.id``;

Latency is the span's duration. A failure sets the span's status to ERROR and ``error.type``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, Status, StatusCode

from agentladder.agents.store import Store

# GenAI semantic-convention attribute names (kept as strings: the conventions' Python module is incubating).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
MAX_TOKENS = "gen_ai.request.max_tokens"
TEMPERATURE = "gen_ai.request.temperature"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
AGENT_NAME = "gen_ai.agent.name"
CONVERSATION_ID = "gen_ai.conversation.id"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
WORKFLOW_NAME = "gen_ai.workflow.name"
ERROR_TYPE = "error.type"
# agentladder's own attributes.
RUN_ID = "agentladder.run.id"
STEP = "agentladder.step"
TRAJECTORY_ID = "agentladder.trajectory.id"


class SQLiteSpanExporter(SpanExporter):
    """Writes finished spans to the runtime's store (table ``spans``)."""

    def __init__(self, store: Store):
        self.store = store

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = []
        for span in spans:
            attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in (span.attributes or {}).items()}
            parent = f"{span.parent.span_id:016x}" if span.parent is not None else None
            rows.append((f"{span.context.span_id:016x}", f"{span.context.trace_id:032x}", parent, span.name,
                         span.start_time, span.end_time, span.status.status_code.name,
                         attrs.get(CONVERSATION_ID), json.dumps(attrs)))
        self.store.spans_add(rows)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def make_tracer_provider(store: Store, *, otlp_endpoint: str | None = None,
                         exporters: Sequence[SpanExporter] = (), service_name: str = "agentladder") -> TracerProvider:
    """A provider whose spans go to ``store``, to each of ``exporters``, and to an OTLP endpoint if one is set.

    ``otlp_endpoint`` is a collector's base address (``http://localhost:4318``) or its full traces URL.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(SimpleSpanProcessor(SQLiteSpanExporter(store)))
    for exporter in exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        if otlp_endpoint:
            url = otlp_endpoint.rstrip("/")
            exporter = OTLPSpanExporter(endpoint=url if url.endswith("/v1/traces") else url + "/v1/traces")
        else:
            exporter = OTLPSpanExporter()  # reads the OTEL_EXPORTER_OTLP_* variables itself
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def record_error(span: Span, error: BaseException, mask: Callable[[str], str] | None = None) -> None:
    """Mark a span failed, the way the conventions ask (status ERROR, ``error.type``); ``mask`` (a guard's)
    masks personal data in the message first."""
    text = str(error)
    span.set_status(Status(StatusCode.ERROR, (mask(text) if mask else text)[:500]))
    span.set_attribute(ERROR_TYPE, type(error).__qualname__)
