"""Tools described by a JSON schema and run elsewhere (an MCP server, a signed endpoint).

A :class:`RemoteTool` is a :class:`~agentladder.agents.Tool` whose arguments are
described by the JSON schema its server declared rather than by a Python signature.
The runtime treats it like a local tool: the model sees the same ``tools`` entry,
arguments are validated (against the JSON schema, with ``jsonschema``) before they
are sent, and the result comes back as the same text a local tool would give for
the same value. What can go wrong on the way is a :mod:`~agentladder.agents.faults`
error the model is shown: a malformed declared schema (``ToolSchemaError``, the tool
is still listed but refuses to run), a result that breaks the declared output schema
(``ToolResultError``), a server that is gone (``ToolConnectionError``), no answer in
time (``ToolTimeout``), an oversize result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from agentladder.agents._sync import run_sync
from agentladder.agents.faults import ToolResultError, ToolSchemaError
from agentladder.agents.jobs import JobHandle, JobSource
from agentladder.agents.tools import (
    DEFAULT_MAX_RESULT_CHARS,
    Tool,
    ToolArgumentError,
    check_tool_name,
)

Invoke = Callable[[dict[str, Any]], Awaitable[Any]]


def schema_problem(schema: Any, what: str) -> str | None:
    """Why ``schema`` cannot describe ``what`` (not an object, not valid JSON Schema), or None."""
    if not isinstance(schema, dict):
        return f"the {what} schema is a {type(schema).__name__}, not a JSON object"
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        return f"the {what} schema is not valid JSON Schema ({where}: {err.message})"
    if what == "input" and schema.get("type", "object") != "object":
        return f"the input schema describes a {schema.get('type')!r}, not an object of arguments"
    return None


class RemoteTool(Tool):
    """A tool defined by a name, a description, JSON schemas and an async ``invoke(arguments)``."""

    tool_type = "extension"

    def __init__(self, name: str, description: str | None, input_schema: Any, invoke: Invoke, *,
                 output_schema: Any = None, check_output: bool = True, job_source: JobSource | None = None,
                 timeout: float | None = 60.0, max_result_chars: int | None = DEFAULT_MAX_RESULT_CHARS,
                 job_wait: float | None = 60.0, on_job_overrun: str = "pause",
                 span_attributes: dict[str, Any] | None = None):
        check_tool_name(name)
        self.name = name
        self.description = description or ""
        self.fn = None
        self.is_async = True
        self.return_type = Any
        self._invoke = invoke
        self.job_source = job_source
        self.span_attributes = dict(span_attributes or {})
        self._set_limits(timeout, max_result_chars, job_wait, on_job_overrun)
        self.schema_error = schema_problem(input_schema, "input")
        self.input_schema: dict[str, Any] = input_schema if self.schema_error is None else {
            "type": "object", "properties": {}}
        self._validator = validator_for(self.input_schema)(self.input_schema)
        self.declared_output_schema = output_schema
        output_error = schema_problem(output_schema, "output") if output_schema is not None else None
        self.schema_error = self.schema_error or output_error
        self._output_validator = (validator_for(output_schema)(output_schema)
                                  if output_schema is not None and output_error is None and check_output else None)

    @property
    def parameters(self) -> dict[str, Any]:
        return self.input_schema

    @property
    def output_schema(self) -> dict[str, Any] | None:
        return self.declared_output_schema if isinstance(self.declared_output_schema, dict) else None

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"arguments must be a JSON object, not {type(arguments).__name__}")
        errors = sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if errors:
            parts = [f"{'.'.join(str(p) for p in e.absolute_path) or 'arguments'}: {e.message}" for e in errors[:5]]
            more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
            raise ToolArgumentError(f"invalid arguments for {self.name}: {'; '.join(parts)}{more}")
        return arguments

    async def invoke(self, kwargs: dict[str, Any]) -> Any:
        if self.schema_error is not None:
            raise ToolSchemaError(f"{self.name} cannot be called: {self.schema_error}")
        value = await self._invoke(kwargs)
        handle = JobHandle.parse(value)
        if handle is not None:
            if self.job_source is None:
                raise ToolResultError(f"{self.name} answered with job {handle.job}, but its server offers no way "
                                      "to poll jobs")
            return handle.bind(self.job_source)
        if self._output_validator is not None:
            error = next(iter(self._output_validator.iter_errors(value)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "the result"
                raise ToolResultError(f"the result of {self.name} does not match its declared output schema "
                                      f"({where}: {error.message})")
        return value

    def __call__(self, **kwargs: Any) -> Any:
        """Call the remote tool directly (blocking): its value, or :class:`ToolError` naming what failed."""
        async def go() -> Any:
            result = await self.call(kwargs)
            if result.error is not None:
                raise ToolResultError(result.error)
            return result.value
        return run_sync(go())

    def __repr__(self) -> str:
        return f"RemoteTool({self.name!r})"
