"""Tools from an MCP server, through the official ``mcp`` SDK's client.

.. code-block:: python

    tools = mcp_tools("python -m formulary_server")                       # stdio: a subprocess
    tools += mcp_tools("http://127.0.0.1:9000/mcp", headers={"Authorization": "Bearer ..."})

A server is a URL (streamable HTTP) or a command line (stdio; ``python`` means
this interpreter). Its session belongs to an :class:`MCPConnection`, which runs it
on an event loop of its own in a background thread: the SDK's sessions are tied to
the loop that opened them, while the runtime calls tools from many loops (each
blocking ``agent.run`` starts one) and from threads. Calls from any loop or thread
are handed to that loop and awaited. The session opens on first use, is opened
again after the server went away, and is closed by ``close()``, by leaving a
``with`` block, or when the process exits (the subprocess is stopped).

Each call carries the caller's trace context (W3C ``traceparent`` in the request's
``_meta``), so an agentladder server, or any server that reads it, records its
spans in the same trace. Faults become tool errors the model sees, never a hung
run: a per-call ``timeout``, the connection closing mid-call, a malformed schema,
a result that breaks the declared output schema, an oversize result.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shlex
import sys
import threading
import weakref
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT
from opentelemetry import propagate

from agentladder.agents.faults import (
    ToolConnectionError,
    ToolError,
    ToolFailed,
    ToolResultError,
    ToolTimeout,
)
from agentladder.agents.jobs import JobState
from agentladder.agents.mcp.results import error_of, result_value
from agentladder.agents.remote import RemoteTool
from agentladder.errors import ConfigError

JOB_STATUS_TOOL = "agentladder_job_status"
JOB_CANCEL_TOOL = "agentladder_job_cancel"
"""Tools an agentladder server adds when it serves job tools: the runtime polls through them."""
PASSED_ENV = ("PYTHONPATH", "VIRTUAL_ENV", "AGENTLADDER_DB", "AGENTLADDER_HOME")
"""Variables a stdio server inherits besides the SDK's safe defaults (PATH, HOME, ...)."""

_open: weakref.WeakSet[MCPConnection] = weakref.WeakSet()


class MCPConnection:
    """One MCP server and its session, usable from sync and async code. See the module docstring.

    ``headers`` go with every HTTP request; ``env`` and ``cwd`` set up a stdio subprocess;
    ``timeout`` bounds each call and ``connect_timeout`` the opening of the session.
    """

    def __init__(self, server: str, *, headers: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 cwd: str | os.PathLike | None = None, timeout: float = 60.0, connect_timeout: float = 60.0,
                 name: str | None = None):
        if not isinstance(server, str) or not server.strip():
            raise ConfigError(f"an MCP server is a URL or a command line, not {server!r}")
        self.server = server.strip()
        self.is_http = self.server.startswith(("http://", "https://"))
        self.headers, self.env, self.cwd = dict(headers or {}), dict(env or {}), cwd
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.name = name or self.server
        self.listing: list[types.Tool] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._client: Client | None = None
        self._owner: asyncio.Task | None = None
        self._release: asyncio.Event | None = None
        self._session_lock: asyncio.Lock | None = None
        self._closed = False

    # -- the background loop ---------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._closed:
                raise ToolConnectionError(f"the connection to MCP server {self.name} is closed")
            if self._loop is None:
                ready = threading.Event()

                def main() -> None:
                    loop = asyncio.new_event_loop()
                    self._loop = loop
                    ready.set()
                    loop.run_forever()
                    loop.close()

                self._thread = threading.Thread(target=main, name=f"agentladder-mcp {self.name}", daemon=True)
                self._thread.start()
                ready.wait()
                _open.add(self)
            return self._loop

    def _submit(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Hand ``coro`` to the connection's loop (closing it unrun if the connection is closed)."""
        try:
            loop = self._ensure_loop()
        except BaseException:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, loop)

    async def _on_loop(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the connection's loop and await it from the caller's loop."""
        return await asyncio.wrap_future(self._submit(coro))

    def _blocking(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self._submit(coro).result()

    # -- the session (on the connection's loop) --------------------------------------------------

    def _transport(self, stack: AsyncExitStack) -> Any:
        if self.is_http:
            http = httpx2.AsyncClient(headers=self.headers, timeout=httpx2.Timeout(30.0, read=300.0))
            stack.push_async_callback(http.aclose)
            return streamable_http_client(self.server, http_client=http)
        argv = shlex.split(self.server)
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ} | self.env
        return stdio_client(StdioServerParameters(command=argv[0], args=argv[1:], env=env,
                                                  cwd=str(self.cwd) if self.cwd else None))

    async def _hold(self, ready: asyncio.Future) -> None:
        """Open the session, list the tools, and keep the session open until released (one task owns it)."""
        release = self._release = asyncio.Event()
        try:
            async with AsyncExitStack() as stack:
                client = await stack.enter_async_context(Client(self._transport(stack),
                                                                read_timeout_seconds=self.timeout))
                self.listing = await _list_all(client)
                self._client = client
                ready.set_result(client)
                await release.wait()
        except BaseException as err:  # the server could not start, or went away: the next call reopens
            if not ready.done():
                ready.set_exception(ToolConnectionError(f"cannot open MCP server {self.name}: {_describe(err)}"))
            if not isinstance(err, Exception):
                raise
        finally:
            self._client = None

    async def _session(self) -> Client:
        if self._session_lock is None:
            self._session_lock = asyncio.Lock()
        async with self._session_lock:
            if self._client is not None and self._owner is not None and not self._owner.done():
                return self._client
            ready = asyncio.get_running_loop().create_future()
            self._owner = asyncio.create_task(self._hold(ready))
            try:
                return await asyncio.wait_for(asyncio.shield(ready), self.connect_timeout)
            except asyncio.TimeoutError:
                self._owner.cancel()
                raise ToolConnectionError(f"MCP server {self.name} did not answer within "
                                          f"{self.connect_timeout:g} s") from None

    async def _drop(self) -> None:
        """Let the session go (after a broken call); the next call opens a new one."""
        if self._release is not None:
            self._release.set()
        if self._owner is not None:
            await asyncio.wait([self._owner], timeout=5)
            if not self._owner.done():
                self._owner.cancel()

    async def _call(self, name: str, arguments: dict[str, Any], meta: dict[str, Any], timeout: float) -> Any:
        client = await self._session()
        try:
            return await asyncio.wait_for(client.call_tool(name, arguments, read_timeout_seconds=timeout,
                                                           meta=meta or None), timeout)
        except asyncio.TimeoutError:
            raise ToolTimeout(f"{name} gave no result within {timeout:g} s") from None
        except MCPError as err:
            if err.error.code == REQUEST_TIMEOUT:
                raise ToolTimeout(f"{name} gave no result within {timeout:g} s") from None
            if err.error.code == CONNECTION_CLOSED or "closed" in err.error.message.lower():
                await self._drop()
                raise ToolConnectionError(f"MCP server {self.name} closed the connection during the call "
                                          f"({err.error.message})") from None
            raise ToolFailed(f"MCP error {err.error.code}: {err.error.message}", "MCPError") from None
        except RuntimeError as err:  # the SDK's check of the result against the declared output schema
            raise ToolResultError(f"{name}: {str(err).splitlines()[0]}") from None
        except (OSError, EOFError, ConnectionError, httpx2.HTTPError) as err:
            await self._drop()
            raise ToolConnectionError(f"MCP server {self.name} failed during the call: {_describe(err)}") from None
        except Exception as err:
            if type(err).__module__.startswith("anyio"):  # a closed or broken stream: the server is gone
                await self._drop()
                raise ToolConnectionError(f"MCP server {self.name} went away during the call "
                                          f"({type(err).__name__})") from None
            raise

    # -- public ----------------------------------------------------------------------------------

    def open(self) -> MCPConnection:
        """Open the session now (blocking) and list the server's tools."""
        self._blocking(self._session())
        return self

    async def aopen(self) -> MCPConnection:
        await self._on_loop(self._session())
        return self

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float | None = None) -> types.CallToolResult:
        """Call a tool from any loop; the caller's trace context travels in ``_meta``."""
        meta: dict[str, Any] = {}
        propagate.inject(meta)  # W3C traceparent (and tracestate) of the caller's current span
        return await self._on_loop(self._call(name, arguments, meta, timeout or self.timeout))

    def tools(self, *, include: list[str] | None = None, timeout: float | None = None,
              **limits: Any) -> list[RemoteTool]:
        """The server's tools as runtime tools (blocking: opens the session if needed)."""
        if not self.listing:
            self.open()
        return self._tools(include, timeout, limits)

    async def atools(self, *, include: list[str] | None = None, timeout: float | None = None,
                     **limits: Any) -> list[RemoteTool]:
        if not self.listing:
            await self.aopen()
        return self._tools(include, timeout, limits)

    def _tools(self, include: list[str] | None, timeout: float | None, limits: dict[str, Any]) -> list[RemoteTool]:
        listed = [t for t in self.listing if t.name not in (JOB_STATUS_TOOL, JOB_CANCEL_TOOL)]
        if include is not None:
            missing = sorted(set(include) - {t.name for t in listed})
            if missing:
                raise ConfigError(f"MCP server {self.name} has no tool {', '.join(missing)} "
                                  f"(it has {', '.join(t.name for t in listed)})")
            listed = [t for t in listed if t.name in include]
        has_jobs = any(t.name == JOB_STATUS_TOOL for t in self.listing)
        return [self._tool(t, timeout, has_jobs, limits) for t in listed]

    def _tool(self, listed: types.Tool, timeout: float | None, has_jobs: bool, limits: dict[str, Any]) -> RemoteTool:
        output_schema = listed.output_schema
        call_timeout = timeout or self.timeout

        async def invoke(arguments: dict[str, Any]) -> Any:
            result = await self.call(listed.name, arguments, timeout=call_timeout)
            if result.is_error:
                raise ToolFailed(*error_of(result))
            return result_value(result, output_schema)

        attrs = {"mcp.server": self.name, "mcp.method.name": "tools/call",
                 "network.transport": "tcp" if self.is_http else "pipe"}
        return RemoteTool(listed.name, listed.description, listed.input_schema, invoke, output_schema=output_schema,
                          check_output=False, job_source=_MCPJobs(self) if has_jobs else None,
                          timeout=call_timeout + 1.0, span_attributes=attrs, **limits)

    def close(self) -> None:
        """Close the session (stopping a stdio subprocess) and the background loop."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._drop(), loop)
            with contextlib.suppress(Exception):  # closing must not raise; the process may be going down
                future.result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    def __enter__(self) -> MCPConnection:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> MCPConnection:
        return await self.aopen()

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        return f"MCPConnection({self.server!r})"


class _MCPJobs:
    """Polls and cancels jobs through an agentladder server's job tools."""

    def __init__(self, connection: MCPConnection):
        self.connection = connection

    async def _ask(self, tool: str, job_id: str) -> JobState:
        result = await self.connection.call(tool, {"job": job_id})
        if result.is_error:
            raise ToolFailed(*error_of(result))
        return JobState.model_validate(result.structured_content)

    async def job_status(self, job_id: str) -> JobState:
        return await self._ask(JOB_STATUS_TOOL, job_id)

    async def job_cancel(self, job_id: str) -> JobState:
        return await self._ask(JOB_CANCEL_TOOL, job_id)


async def _list_all(client: Client) -> list[types.Tool]:
    tools, cursor = [], None
    for _ in range(100):
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _describe(err: BaseException) -> str:
    inner = getattr(err, "exceptions", None)  # an exception group (anyio's task groups raise them)
    if inner:
        return "; ".join(_describe(e) for e in inner)
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def mcp_tools(server: str, *, headers: dict[str, str] | None = None, env: dict[str, str] | None = None,
              cwd: str | os.PathLike | None = None, include: list[str] | None = None, timeout: float = 60.0,
              connect_timeout: float = 60.0, **limits: Any) -> list[RemoteTool]:
    """The tools of an MCP server (a URL or a command line) as runtime tools.

    The connection stays open for the tools' calls and closes when the process exits
    (or use :class:`MCPConnection` in a ``with`` block to close it earlier). ``include``
    keeps only the named tools; ``limits`` (``max_result_chars``, ``job_wait``,
    ``on_job_overrun``) go to each tool.
    """
    connection = MCPConnection(server, headers=headers, env=env, cwd=cwd, timeout=timeout,
                               connect_timeout=connect_timeout)
    try:
        return connection.tools(include=include, **limits)
    except ToolError as err:
        connection.close()
        raise ConfigError(str(err)) from None
    except BaseException:
        connection.close()
        raise


@atexit.register
def _close_all() -> None:
    for connection in list(_open):
        connection.close()
