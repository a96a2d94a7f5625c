"""Tools from typed Python functions.

``@tool`` reads a function's signature and docstring: the JSON schema of its
arguments comes from the type hints (through pydantic, so models, enums,
``Literal`` and defaults all work), the description from the docstring's
first paragraph, and each argument's description from an ``Args:`` section
(Google style) or ``:param name:`` lines. Arguments are validated before the
function runs; a validation error or an exception raised by the function is
returned to the model as the tool's result (``error: ...``), so the model can
correct itself, and marked as an error in the trace.

Sync and async functions both work; a sync function runs in a worker thread,
so a slow tool does not hold up parallel branches.

Faults are results, not crashes: a tool that runs past its ``timeout``, a result
longer than ``max_result_chars``, or a :class:`ToolError` raised by a remote tool
(a server that died mid-call, a malformed schema, a result that breaks its declared
schema) comes back as an ``error: ...`` result the model sees, with an ``error.type``
on the span. A tool may also answer with a :class:`~agentladder.agents.jobs.JobHandle`
(a long-running job): the call then waits for the job (``job_wait`` seconds), and past
that either pauses the run on the job or cancels it (``on_job_overrun``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from agentladder.agents.faults import ToolFailed, ToolResultError
from agentladder.agents.jobs import is_job_handle, wait_for_job
from agentladder.agents.review import Escalate


class ToolArgumentError(ValueError):
    """Arguments that do not fit the tool's schema."""


DEFAULT_MAX_RESULT_CHARS = 200_000
"""Results longer than this (in characters of the text the model sees) are refused by default."""


@dataclass
class ToolResult:
    """What a tool call gave: the value (or ``None``), the text shown to the model, and whether it failed."""

    value: Any
    text: str
    error: str | None = None
    error_type: str | None = None


class Tool:
    """A callable the model can ask for by name, with a JSON schema for its arguments."""

    tool_type = "function"
    """``gen_ai.tool.type`` on the ``execute_tool`` span (``extension`` for a tool served elsewhere)."""
    span_attributes: dict[str, Any] = {}
    """Further attributes for the ``execute_tool`` span (the MCP server, the transport)."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                 timeout: float | None = None, max_result_chars: int | None = DEFAULT_MAX_RESULT_CHARS,
                 job_wait: float | None = 60.0, on_job_overrun: str = "pause"):
        self.fn = fn
        self.name = name or fn.__name__
        check_tool_name(self.name)
        self._set_limits(timeout, max_result_chars, job_wait, on_job_overrun)
        doc = inspect.getdoc(fn) or ""
        summary, arg_docs = _parse_docstring(doc)
        self.description = description if description is not None else summary
        self.is_async = inspect.iscoroutinefunction(fn)
        hints = get_type_hints(fn)
        self.return_type = hints.get("return", Any)
        fields: dict[str, Any] = {}
        for pname, param in inspect.signature(fn).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ValueError(f"tool {self.name}: *args and **kwargs cannot be described to a model")
            annotation = hints.get(pname, Any)
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[pname] = (annotation, Field(default, description=arg_docs.get(pname)))
        self.arguments_model: type[BaseModel] = create_model(
            f"{self.name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)

    def _set_limits(self, timeout: float | None, max_result_chars: int | None, job_wait: float | None,
                    on_job_overrun: str) -> None:
        if on_job_overrun not in ("pause", "cancel"):
            raise ValueError(f"tool {self.name}: on_job_overrun must be 'pause' or 'cancel', not {on_job_overrun!r}")
        self.timeout = timeout
        """Seconds a call may take before it is abandoned and the model told (None: no limit)."""
        self.max_result_chars = max_result_chars
        """Longest result text the model is shown; a longer one is an error (None: no limit)."""
        self.job_wait = job_wait
        """Seconds a call waits for a job it started before the overrun policy applies (None: no limit)."""
        self.on_job_overrun = on_job_overrun
        """``pause``: the run pauses on the job and resumes when it finishes; ``cancel``: the job is cancelled."""

    @property
    def argument_names(self) -> list[str]:
        """The names of the arguments, in schema order."""
        return list(self.parameters.get("properties", {}))

    @property
    def output_schema(self) -> dict[str, Any] | None:
        """JSON schema of the result, when the return type says more than ``Any``."""
        if self.return_type is Any or self.return_type is None:
            return None
        try:
            return TypeAdapter(self.return_type).json_schema(mode="serialization")
        except Exception:  # a type pydantic cannot describe: no declared output
            return None

    @property
    def parameters(self) -> dict[str, Any]:
        """JSON schema of the arguments object."""
        schema = self.arguments_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema

    def to_openai(self) -> dict[str, Any]:
        """The tool as OpenAI's ``tools`` entry (also what chat templates with tool support take)."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments checked and converted, or :class:`ToolArgumentError` saying what is wrong."""
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"arguments must be a JSON object, not {type(arguments).__name__}")
        try:
            model = self.arguments_model.model_validate(arguments)
        except ValidationError as err:
            raise ToolArgumentError(f"invalid arguments for {self.name}: {format_validation_error(err)}") from None
        return {k: getattr(model, k) for k in self.arguments_model.model_fields}

    async def call(self, arguments: dict[str, Any], *, wait_jobs: bool = True) -> ToolResult:
        """Validate and run; never raises for bad arguments or a failing tool (the model sees the error).

        :class:`~agentladder.agents.review.Escalate` (and so a run paused on a job) still propagates.
        ``wait_jobs=False`` gives a job handle back as the value instead of waiting (what a server does).
        """
        try:
            kwargs = self.validate(arguments)
        except ToolArgumentError as err:
            return ToolResult(None, f"error: {err}", str(err), "ToolArgumentError")
        try:
            value = await asyncio.wait_for(self.invoke(kwargs), self.timeout)
            if wait_jobs and is_job_handle(value):
                value = await wait_for_job(self, value)
            text = self.render(value)
            if self.max_result_chars is not None and len(text) > self.max_result_chars:
                raise ToolResultError(f"the result of {self.name} is {len(text):,} characters, over the limit of "
                                      f"{self.max_result_chars:,}; ask for less")
        except Escalate:
            raise  # a person (or a job) decides: the run pauses, the model is not asked again
        except (asyncio.TimeoutError, TimeoutError):
            message = f"ToolTimeout: {self.name} gave no result within {self.timeout:g} s"
            return ToolResult(None, f"error: {message}", message, "ToolTimeout")
        except ToolFailed as err:  # the remote tool's own words
            return ToolResult(None, f"error: {err}", str(err), err.error_type)
        except Exception as err:  # the model is told, and may try again
            message = f"{type(err).__name__}: {err}"
            return ToolResult(None, f"error: {message}", message, type(err).__qualname__)
        return ToolResult(value, text)

    async def invoke(self, kwargs: dict[str, Any]) -> Any:
        """Run the tool on validated arguments and return its value (a remote tool sends them on)."""
        if self.is_async:
            return await self.fn(**kwargs)
        return await asyncio.to_thread(self.fn, **kwargs)

    def render(self, value: Any) -> str:
        """The text the model is shown for a value."""
        return result_text(value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, as if it were not a tool."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None,
         **limits: Any) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function into a :class:`Tool`: ``@tool`` or ``@tool(name=..., timeout=30, ...)``.

    ``limits`` are :class:`Tool`'s ``timeout``, ``max_result_chars``, ``job_wait`` and ``on_job_overrun``.
    """
    if fn is None:
        return lambda f: Tool(f, name=name, description=description, **limits)
    return Tool(fn, name=name, description=description, **limits)


def as_tool(obj: Tool | Callable[..., Any] | Any) -> Tool:
    """A tool from a tool, an agent (``agent.as_tool()``) or a plain typed function."""
    if isinstance(obj, Tool):
        return obj
    if hasattr(obj, "as_tool"):
        return obj.as_tool()
    if callable(obj):
        return Tool(obj)
    raise TypeError(f"{obj!r} is not a tool, an agent or a function")


def check_tool_name(name: str) -> None:
    """Tool names the model can write: letters, digits, ``_ . -``, at most 64 characters."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", name):
        raise ValueError(f"tool name {name!r}: use letters, digits, _ . - (at most 64)")


def jsonable(value: Any) -> Any:
    """A value as JSON-ready data (pydantic models and dataclasses become their fields)."""
    return TypeAdapter(Any).dump_python(value, mode="json")


def result_text(value: Any) -> str:
    """How a tool's return value is shown to the model: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), ensure_ascii=False)


def format_validation_error(err: ValidationError, limit: int = 5) -> str:
    """pydantic's errors in one line: ``field: message; ...``."""
    parts = []
    for e in err.errors()[:limit]:
        loc = ".".join(str(p) for p in e["loc"]) or "value"
        parts.append(f"{loc}: {e['msg']}")
    more = len(err.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and per-argument descriptions from ``Args:`` or ``:param x:`` lines."""
    summary = doc.split("\n\n", 1)[0].strip().replace("\n", " ")
    args: dict[str, str] = {}
    for m in re.finditer(r"^\s*:param\s+(?:\S+\s+)?(\w+):\s*(.+)$", doc, re.MULTILINE):
        args[m.group(1)] = m.group(2).strip()
    section = re.search(r"^(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.+\n?)+)", doc, re.MULTILINE)
    if section:
        current = None
        for line in section.group(1).splitlines():
            m = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
            if m:
                current = m.group(1)
                args[current] = m.group(2).strip()
            elif current and line.strip():
                args[current] += " " + line.strip()
    return summary, args

