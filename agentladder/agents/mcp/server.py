"""This project's tools, and agents, as an MCP server (the official SDK's low-level ``Server``).

.. code-block:: python

    server = mcp_server([check_dose, check_interactions, reviewer])   # tools, functions, agents
    serve_mcp([check_dose, reviewer], transport="http", port=9000)    # http://127.0.0.1:9000/mcp
    serve_mcp([check_dose], transport="stdio")                        # for `mcp_tools("python -m ...")`

Each tool is listed with its JSON input schema and, when its return type says more
than ``Any``, an output schema (a non-object result wrapped as ``{"result": ...}``,
the SDK's convention); each call runs the tool exactly as the runtime does in process
(the same validation, limits and error text), inside an ``execute_tool`` span whose
parent is the caller's span (the ``traceparent`` in the request's ``_meta``). An
agent served as a tool runs inside that span, so the caller's run and the agent's
run are one trace. Job tools (:class:`~agentladder.agents.JobQueue`) answer with a
job handle, and the server adds ``agentladder_job_status`` and
``agentladder_job_cancel`` for the client's runtime to poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server import Server
from mcp.server.stdio import stdio_server
from opentelemetry import propagate
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette

from agentladder.agents import tracing as sc
from agentladder.agents.jobqueue import JobQueue, JobTool
from agentladder.agents.mcp.client import JOB_CANCEL_TOOL, JOB_STATUS_TOOL
from agentladder.agents.mcp.results import ERROR_TYPE_META, wrap_schema
from agentladder.agents.review import Escalate
from agentladder.agents.runtime import RunContext, Runtime, default_runtime, use_context
from agentladder.agents.store import new_id
from agentladder.agents.tools import Tool, ToolResult, as_tool, jsonable


def _job_tools(queue: JobQueue) -> list[Tool]:
    async def agentladder_job_status(job: str) -> dict[str, Any]:
        """Where a job started by one of this server's tools stands: status, and result or error once ended.

        Args:
            job: the job id from the tool's answer
        """
        return queue.get(job).model_dump(mode="json")

    async def agentladder_job_cancel(job: str) -> dict[str, Any]:
        """Cancel a job started by one of this server's tools.

        Args:
            job: the job id from the tool's answer
        """
        return queue.cancel(job).model_dump(mode="json")

    return [Tool(agentladder_job_status, name=JOB_STATUS_TOOL), Tool(agentladder_job_cancel, name=JOB_CANCEL_TOOL)]


class ServedTools:
    """The tools a server offers, their MCP descriptions, and how a call is run and answered."""

    def __init__(self, tools: Sequence[Any], runtime: Runtime | None = None):
        self.tools = [as_tool(t) for t in tools]
        queues = {id(t.queue): t.queue for t in self.tools if isinstance(t, JobTool)}
        for queue in queues.values():
            self.tools += _job_tools(queue)
        self.queues = list(queues.values())
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"two tools share a name: {names}")
        self.by_name = {t.name: t for t in self.tools}
        self.runtime = runtime
        self.wrapped: dict[str, bool] = {}
        self.listing = [self._describe(t) for t in self.tools]

    def _describe(self, t: Tool) -> types.Tool:
        output = None if isinstance(t, JobTool) else t.output_schema
        schema, wrapped = wrap_schema(t.name, output)
        self.wrapped[t.name] = wrapped
        return types.Tool(name=t.name, description=t.description or None, input_schema=t.parameters,
                          output_schema=schema)

    async def list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.listing)

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        runtime = self.runtime or default_runtime()
        name, arguments = params.name, params.arguments or {}
        parent = propagate.extract(dict(ctx.meta or {}))
        attrs = {sc.OPERATION: "execute_tool", sc.TOOL_NAME: name, sc.TOOL_TYPE: "function",
                 "mcp.method.name": "tools/call"}
        session = new_id("mcp")
        with runtime.tracer.start_as_current_span(f"execute_tool {name}", context=parent, kind=SpanKind.SERVER,
                                                  attributes=attrs, record_exception=False,
                                                  set_status_on_exception=False) as span:
            with use_context(RunContext(runtime, session)):
                result = await self._run(name, arguments)
            if result.error is not None:
                span.set_status(sc.Status(sc.StatusCode.ERROR, result.error[:500]))
                span.set_attribute(sc.ERROR_TYPE, result.error_type or "ToolError")
        return self._answer(name, result)

    async def _run(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        t = self.by_name.get(name)
        if t is None:
            message = f"no tool named {name!r} (tools: {', '.join(self.by_name)})"
            return ToolResult(None, f"error: {message}", message, "UnknownTool")
        try:
            return await t.call(arguments, wait_jobs=False)
        except Escalate as esc:  # a served agent asked for a person: the caller is told, nothing is decided
            message = f"Escalated: {esc.reason}"
            return ToolResult(None, f"error: {message}", message, "Escalate")

    def _answer(self, name: str, result: ToolResult) -> types.CallToolResult:
        if result.error is not None:
            return types.CallToolResult(content=[types.TextContent(type="text", text=result.error)], is_error=True,
                                        meta={ERROR_TYPE_META: result.error_type or "ToolError"})
        structured = None
        value = jsonable(result.value)
        if self.wrapped.get(name):
            structured = {"result": value}
        elif isinstance(value, dict) and (self.by_name[name].output_schema is not None
                                          or isinstance(self.by_name[name], JobTool)):
            structured = value
        return types.CallToolResult(content=[types.TextContent(type="text", text=result.text)],
                                    structured_content=structured)


def mcp_server(tools: Sequence[Any], *, name: str = "agentladder", runtime: Runtime | None = None,
               instructions: str | None = None) -> Server:
    """An MCP server (the SDK's low-level ``Server``) offering ``tools`` (tools, typed functions, agents).

    ``runtime`` is where served agents keep their trajectories and where the server's spans go
    (default: the process's default runtime).
    """
    served = ServedTools(tools, runtime)
    server = Server(name, instructions=instructions, on_list_tools=served.list_tools,
                    on_call_tool=served.call_tool)
    server.served = served  # type: ignore[attr-defined]
    return server


def mcp_http_app(tools: Sequence[Any], *, name: str = "agentladder", runtime: Runtime | None = None,
                 path: str = "/mcp", host: str = "127.0.0.1", stateless: bool = False) -> Starlette:
    """The server as an ASGI app (streamable HTTP at ``path``) for uvicorn or any ASGI server."""
    server = mcp_server(tools, name=name, runtime=runtime)
    return server.streamable_http_app(streamable_http_path=path, stateless_http=stateless, host=host)


async def aserve_stdio(server: Server) -> None:
    """Serve one client over this process's stdin and stdout until it closes them."""
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def serve_mcp(tools: Sequence[Any], *, transport: str = "http", host: str = "127.0.0.1", port: int = 9000,
              path: str = "/mcp", name: str = "agentladder", runtime: Runtime | None = None,
              log_level: str = "warning") -> None:
    """Serve ``tools`` over ``stdio`` or streamable ``http`` (blocking); job queues run while it serves."""
    runtime = runtime or default_runtime()
    served_tools = [as_tool(t) for t in tools]
    queues = {id(t.queue): t.queue for t in served_tools if isinstance(t, JobTool)}
    for queue in queues.values():
        queue.start()
    try:
        if transport == "stdio":
            anyio.run(aserve_stdio, mcp_server(served_tools, name=name, runtime=runtime))
        elif transport == "http":
            app = mcp_http_app(served_tools, name=name, runtime=runtime, path=path, host=host)
            uvicorn.run(app, host=host, port=port, log_level=log_level)
        else:
            raise ValueError(f"transport must be 'stdio' or 'http', not {transport!r}")
    finally:
        for queue in queues.values():
            queue.stop()
