"""Stateless tool calls in which every request is signed: a FastAPI endpoint and the client the runtime uses.

.. code-block:: python

    keys = KeyRing(runtime.store)
    key_id, secret = keys.add()                                   # share the secret with the caller
    app = signed_app([check_dose, check_interactions], runtime=runtime)   # serve with uvicorn
    tools = signed_tools("http://127.0.0.1:9100", key=secret, key_id=key_id)
    Agent(model, tools=tools)                                     # every call signed, transparently

The endpoint (every route but ``/health`` signed, see :mod:`~agentladder.agents.signing`):

- ``GET /tools``: each tool's name, description, input and output schema;
- ``POST /call`` with ``{"tool": NAME, "arguments": {...}}``: ``{"ok": true, "value": ..., "text": ...}``,
  or ``{"ok": false, "error": ..., "error_type": ...}`` when the tool failed (as the model would see it);
- ``GET /jobs/ID``, ``POST /jobs/ID/cancel``: a job started by a job tool;
- ``GET /health``: ``{"ok": true}``, unsigned.

A refused request gets its status (400 bad JSON, 401 signature, 404 unknown tool,
409 replay, 413 too large) and ``{"detail": reason}``; every refusal is written to
the audit log (``signed_call_refused``, with the reason, path, key id and client
address) and every accepted call too (``signed_call``). The caller's trace context
travels in the W3C ``traceparent`` header, so the server's ``execute_tool`` span
joins the caller's trace.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import propagate
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ConfigDict, ValidationError

from agentladder.agents import tracing as sc
from agentladder.agents.faults import ToolConnectionError, ToolFailed, ToolTimeout
from agentladder.agents.jobqueue import JobTool
from agentladder.agents.jobs import JobError, JobState
from agentladder.agents.remote import RemoteTool
from agentladder.agents.review import Escalate
from agentladder.agents.runtime import RunContext, Runtime, default_runtime, use_context
from agentladder.agents.signing import KeyRing, Verifier, sign
from agentladder.agents.store import new_id
from agentladder.agents.tools import Tool, ToolResult, as_tool, jsonable
from agentladder.errors import ConfigError


class CallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str
    arguments: dict[str, Any] = {}


def _refuse(store: Any, request: Request, status: int, reason: str, key_id: str | None = None) -> JSONResponse:
    client = request.client.host if request.client else None
    store.audit("signed_call_refused", data={"status": status, "reason": reason, "path": request.url.path,
                                             "method": request.method, "key_id": key_id, "client": client})
    return JSONResponse({"detail": reason}, status_code=status)


class _Endpoint:
    """The routes of :func:`signed_app`: every one but ``/health`` checks the signature first."""

    def __init__(self, tools: Sequence[Any], rt: Runtime, verifier: Verifier, max_body: int):
        self.rt, self.verifier, self.max_body = rt, verifier, max_body
        self.served = [as_tool(t) for t in tools]
        self.by_name: dict[str, Tool] = {t.name: t for t in self.served}
        self.queues = {id(t.queue): t.queue for t in self.served if isinstance(t, JobTool)}

    async def authentic(self, request: Request) -> tuple[bytes, JSONResponse | None]:
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_body:
            return b"", _refuse(self.rt.store, request, 413, f"body over {self.max_body} bytes")
        body = await request.body()
        if len(body) > self.max_body:
            return b"", _refuse(self.rt.store, request, 413, f"body over {self.max_body} bytes")
        refusal = self.verifier.check(request.method, request.url.path, request.headers, body)
        if refusal is not None:
            return body, _refuse(self.rt.store, request, refusal.status, refusal.reason,
                                 request.headers.get("x-agentladder-key"))
        return body, None

    async def health(self) -> dict[str, Any]:
        return {"ok": True, "tools": len(self.by_name)}

    async def list_tools(self, request: Request) -> Any:
        _, refused = await self.authentic(request)
        if refused is not None:
            return refused
        return {"tools": [{"name": t.name, "description": t.description, "input_schema": t.parameters,
                           "output_schema": None if isinstance(t, JobTool) else t.output_schema}
                          for t in self.served]}

    async def call(self, request: Request) -> Any:
        body, refused = await self.authentic(request)
        if refused is not None:
            return refused
        try:
            payload = CallBody.model_validate(json.loads(body))
        except (ValueError, ValidationError) as err:
            first = (str(err).splitlines() or [type(err).__name__])[0]
            return _refuse(self.rt.store, request, 400, f"the body is not a call: {first[:200]}")
        t = self.by_name.get(payload.tool)
        if t is None:
            return _refuse(self.rt.store, request, 404, f"no tool named {payload.tool[:64]!r}")
        result = await _run(self.rt, t, payload.arguments, request)
        self.rt.store.audit("signed_call", data={"tool": t.name, "key_id": request.headers.get("x-agentladder-key"),
                                                 "error": result.error})
        if result.error is not None:
            return {"ok": False, "error": result.error, "error_type": result.error_type, "text": result.text}
        return {"ok": True, "value": jsonable(result.value), "text": result.text}

    async def job_status(self, request: Request, job_id: str) -> Any:
        return await self._job(request, job_id, cancel=False)

    async def job_cancel(self, request: Request, job_id: str) -> Any:
        return await self._job(request, job_id, cancel=True)

    async def _job(self, request: Request, job_id: str, cancel: bool) -> Any:
        _, refused = await self.authentic(request)
        if refused is not None:
            return refused
        for queue in self.queues.values():
            try:
                state = queue.cancel(job_id) if cancel else queue.get(job_id)
            except JobError:
                continue
            if state.tool in queue.tools:
                return state.model_dump(mode="json")
        return _refuse(self.rt.store, request, 404, f"no job {job_id[:64]!r}")


def signed_app(tools: Sequence[Any], *, runtime: Runtime | None = None, keys: KeyRing | None = None,
               max_skew: float = 300.0, max_body: int = 1_000_000) -> FastAPI:
    """A FastAPI app serving ``tools`` to signed requests; keys and nonces live in the runtime's store."""
    rt = runtime or default_runtime()
    end = _Endpoint(tools, rt, Verifier(keys or KeyRing(rt.store), max_skew=max_skew), max_body)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for queue in end.queues.values():  # the job tools' queues run while the app serves
            queue.start()
        yield
        for queue in end.queues.values():
            queue.stop()

    app = FastAPI(title="agentladder signed tools", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.add_api_route("/health", end.health, methods=["GET"])
    app.add_api_route("/tools", end.list_tools, methods=["GET"])
    app.add_api_route("/call", end.call, methods=["POST"])
    app.add_api_route("/jobs/{job_id}", end.job_status, methods=["GET"])
    app.add_api_route("/jobs/{job_id}/cancel", end.job_cancel, methods=["POST"])
    return app


async def _run(rt: Runtime, t: Tool, arguments: dict[str, Any], request: Request) -> ToolResult:
    parent = propagate.extract(dict(request.headers))
    attrs = {sc.OPERATION: "execute_tool", sc.TOOL_NAME: t.name, sc.TOOL_TYPE: "function"}
    with rt.tracer.start_as_current_span(f"execute_tool {t.name}", context=parent, kind=SpanKind.SERVER,
                                         attributes=attrs, record_exception=False,
                                         set_status_on_exception=False) as span:
        with use_context(RunContext(rt, new_id("signed"))):
            try:
                result = await t.call(arguments, wait_jobs=False)
            except Escalate as esc:
                result = ToolResult(None, f"error: Escalated: {esc.reason}", f"Escalated: {esc.reason}", "Escalate")
        if result.error is not None:
            span.set_status(sc.Status(sc.StatusCode.ERROR, result.error[:500]))
            span.set_attribute(sc.ERROR_TYPE, result.error_type or "ToolError")
    return result


class SignedClient:
    """Signs and sends requests to a signed tool endpoint (sync for listing, async for calls)."""

    def __init__(self, url: str, *, key: str | bytes, key_id: str, timeout: float = 60.0):
        self.url, self.key, self.key_id, self.timeout = url.rstrip("/"), key, key_id, timeout
        # Calls come from many event loops, so each opens its own httpx client; building a TLS
        # context (loading the CA bundle) is what costs there, so they share this one.
        self.tls = httpx.create_ssl_context()

    def _prepare(self, method: str, path: str, payload: Any) -> tuple[bytes, dict[str, str]]:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = sign(self.key, self.key_id, method, path, body)
        headers["content-type"] = "application/json"
        propagate.inject(headers)  # traceparent of the caller's span
        return body, headers

    def request(self, method: str, path: str, payload: Any = None) -> Any:
        body, headers = self._prepare(method, path, payload)
        try:
            with httpx.Client(timeout=self.timeout, verify=self.tls) as http:
                response = http.request(method, self.url + path, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise self._fault(err) from None
        return self._read(response)

    async def arequest(self, method: str, path: str, payload: Any = None) -> Any:
        body, headers = self._prepare(method, path, payload)
        try:
            async with httpx.AsyncClient(timeout=self.timeout, verify=self.tls) as http:
                response = await http.request(method, self.url + path, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise self._fault(err) from None
        return self._read(response)

    def _fault(self, err: httpx.HTTPError) -> ToolTimeout | ToolConnectionError:
        """A transport failure as the tool error the model is shown: no answer in time, or no server."""
        if isinstance(err, httpx.TimeoutException):
            return ToolTimeout(f"signed endpoint {self.url} gave no answer within {self.timeout:g} s")
        return ToolConnectionError(f"signed endpoint {self.url}: {type(err).__name__}: {err}")

    def _read(self, response: httpx.Response) -> Any:
        try:
            data = response.json()
        except ValueError:
            data = {"detail": response.text[:200]}
        if response.status_code != 200:
            raise ToolConnectionError(f"signed endpoint {self.url} refused the call ({response.status_code}: "
                                      f"{data.get('detail') if isinstance(data, dict) else data})")
        return data

    async def job_status(self, job_id: str) -> JobState:
        return JobState.model_validate(await self.arequest("GET", f"/jobs/{job_id}"))

    async def job_cancel(self, job_id: str) -> JobState:
        return JobState.model_validate(await self.arequest("POST", f"/jobs/{job_id}/cancel"))


def signed_tools(url: str, *, key: str | bytes, key_id: str, timeout: float = 60.0,
                 include: list[str] | None = None, **limits: Any) -> list[RemoteTool]:
    """The tools of a signed endpoint as runtime tools; each call is signed with ``key`` (named ``key_id``)."""
    client = SignedClient(url, key=key, key_id=key_id, timeout=timeout)
    try:
        listed = client.request("GET", "/tools")["tools"]
    except (ToolConnectionError, ToolTimeout) as err:
        raise ConfigError(str(err)) from None
    if include is not None:
        listed = [t for t in listed if t["name"] in include]
    return [_tool(client, t, timeout, limits) for t in listed]


def _tool(client: SignedClient, listed: dict[str, Any], timeout: float, limits: dict[str, Any]) -> RemoteTool:
    name = listed["name"]

    async def invoke(arguments: dict[str, Any]) -> Any:
        answer = await client.arequest("POST", "/call", {"tool": name, "arguments": arguments})
        if not answer.get("ok"):
            raise ToolFailed(str(answer.get("error")), str(answer.get("error_type") or "ToolFailed"))
        return answer.get("value")

    return RemoteTool(name, listed.get("description"), listed.get("input_schema"), invoke,
                      output_schema=listed.get("output_schema"), job_source=client, timeout=timeout + 1.0,
                      span_attributes={"server.address": client.url}, **limits)


__all__ = ["SignedClient", "signed_app", "signed_tools"]
