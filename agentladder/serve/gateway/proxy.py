"""The gateway in front of another OpenAI-compatible server (vLLM on a GPU): keys, usage, recording unchanged.

:func:`create_proxy_app` serves the same ``/v1`` routes as ``agentladder serve`` and
forwards each call to the upstream server, through the same call wrapper
(:func:`~agentladder.serve.calls.serve_call`) and so the same hooks: a key is checked
before anything is forwarded, and the usage row, the recording and the span are
written from the upstream's answer before it is relayed to the client.

- A whole answer is relayed with the upstream's status; its ``usage`` is what is charged.
  An upstream error keeps its status and comes back in the OpenAI shape (vLLM's older
  flat ``{"object": "error", ...}`` body is rewrapped).
- A stream is relayed event by event. The gateway asks the upstream for
  ``stream_options.include_usage`` so that it can charge the tokens, and drops that last
  usage event when the client did not ask for it; the events are assembled into the
  answer a whole call would have got, for the hooks (:class:`Assembler`). Its lines are cut
  where the event-stream format cuts them, at CR, LF or CRLF only (:func:`event_lines`):
  an upstream that writes its JSON as raw UTF-8 may put U+2028 or NEL inside an event.
- An upstream that does not answer is a 502 ``upstream_unavailable``.

``/health`` asks the upstream's; ``/metrics`` is the gateway's own counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from agentladder.serve import errors
from agentladder.serve.calls import Call, serve_call
from agentladder.serve.errors import APIError
from agentladder.serve.hooks import CLIENT_CLOSED, CallUsage, Gateway, ServerHooks
from agentladder.serve.metrics import CONTENT_TYPE, Metrics
from agentladder.serve.routes import sse, streamed

STREAMING = ("/v1/chat/completions", "/v1/completions")
ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completions", "/v1/embeddings": "embeddings",
             "/v1/load_lora_adapter": "load_adapter", "/v1/unload_lora_adapter": "unload_adapter"}


class ProxyState:
    """What the proxy's routes share: the upstream's address, the hooks, the metrics, the HTTP client."""

    def __init__(self, upstream: str, hooks: Gateway | None = None, *, api_key: str | None = None,
                 timeout: float = 600.0):
        self.upstream = upstream.rstrip("/").removesuffix("/v1")
        self.hooks: Gateway = hooks or ServerHooks()
        self.metrics = Metrics(None)
        self.api_key, self.timeout = api_key, timeout
        self.client: httpx.AsyncClient | None = None


class Assembler:
    """Stream events (chat or text completion chunks) put back together as one whole answer."""

    def __init__(self, chat: bool):
        self.chat = chat
        self.meta: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: CallUsage | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        for field in ("id", "created", "model"):
            if field in chunk:
                self.meta.setdefault(field, chunk[field])
        if isinstance(chunk.get("usage"), dict):
            u = chunk["usage"]
            self.usage = CallUsage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
        for c in chunk.get("choices") or []:
            slot = self.choices.setdefault(int(c.get("index", 0)), {"text": [], "calls": {}, "finish": None})
            delta = c.get("delta") or {}
            piece = c.get("text") if not self.chat else delta.get("content")
            if piece:
                slot["text"].append(piece)
            for tc in delta.get("tool_calls") or []:
                call = slot["calls"].setdefault(int(tc.get("index", 0)), {
                    "id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                fn = tc.get("function") or {}
                call["id"] = tc.get("id") or call["id"]
                call["function"]["name"] = fn.get("name") or call["function"]["name"]
                call["function"]["arguments"] += fn.get("arguments") or ""
            if c.get("finish_reason"):
                slot["finish"] = c["finish_reason"]

    def response(self) -> dict[str, Any]:
        choices = []
        for i, slot in sorted(self.choices.items()):
            text = "".join(slot["text"])
            if not self.chat:
                choices.append({"index": i, "text": text, "logprobs": None, "finish_reason": slot["finish"]})
                continue
            message: dict[str, Any] = {"role": "assistant", "content": text or (None if slot["calls"] else "")}
            if slot["calls"]:
                message["tool_calls"] = [slot["calls"][k] for k in sorted(slot["calls"])]
            choices.append({"index": i, "message": message, "logprobs": None, "finish_reason": slot["finish"]})
        out = {**self.meta, "object": "chat.completion" if self.chat else "text_completion", "choices": choices}
        if self.usage is not None:
            out["usage"] = self.usage.to_openai()
        return out


def upstream_error(status: int, raw: bytes) -> APIError:
    """An upstream's error answer as an :class:`APIError` with its status (either error body shape)."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    err = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(err, dict):
        text = raw.decode("utf-8", "replace").strip()[:500] or f"the upstream server answered {status}"
        return APIError(status, text)
    code = err.get("code")
    return APIError(status, str(err.get("message") or f"the upstream server answered {status}"),
                    param=err.get("param"), code=code if isinstance(code, str) else None,
                    type=err.get("type") if isinstance(err.get("type"), str) else None)


async def _send(state: ProxyState, request: Request, body: dict[str, Any] | None) -> httpx.Response:
    assert state.client is not None, "the proxy's client starts with the app"
    headers = {"Authorization": f"Bearer {state.api_key}"} if state.api_key else {}
    req = state.client.build_request(request.method, state.upstream + request.url.path, json=body, headers=headers)
    try:
        return await state.client.send(req, stream=True)
    except httpx.HTTPError as err:
        raise APIError(502, f"The upstream server at {state.upstream} did not answer: {type(err).__name__}: {err}",
                       code="upstream_unavailable") from None


async def forward(call: Call, body: dict[str, Any] | None) -> Any:
    """One call sent upstream and its answer relayed (see the module docstring)."""
    state: ProxyState = call.state  # type: ignore[assignment]
    path = call.request.url.path
    stream = bool(body and body.get("stream") is True and path in STREAMING)
    want_usage = bool(stream and isinstance(body.get("stream_options"), dict)  # type: ignore[union-attr]
                      and body["stream_options"].get("include_usage"))  # type: ignore[index]
    if stream:
        body = {**body, "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}  # type: ignore[dict-item]
    resp = await _send(state, call.request, body)
    if stream and resp.status_code == 200 and resp.headers.get("content-type", "").startswith("text/event-stream"):
        return streamed(_relay_stream(call, resp, path == "/v1/chat/completions", want_usage))
    raw = await resp.aread()
    await resp.aclose()
    if resp.status_code >= 400:
        raise upstream_error(resp.status_code, raw)
    try:
        answer = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        answer = None
    if not isinstance(answer, dict):  # the adapter routes answer in text
        return Response(raw, status_code=resp.status_code, media_type=resp.headers.get("content-type"))
    if isinstance(answer.get("usage"), dict):
        u = answer["usage"]
        call.usage = CallUsage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
    return answer


_EOL = re.compile(r"\r\n|\r|\n")


async def event_lines(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    """The lines of an event stream arriving as text ``chunks``, cut at CRLF, LF or CR and nowhere else.

    ``str.splitlines`` (and so httpx's ``aiter_lines``) also cuts at U+2028, U+2029, NEL and the other
    Unicode breaks, which a JSON encoder writing raw UTF-8 leaves unescaped inside a string."""
    pending = ""
    async for text in chunks:
        pending += text
        cut = len(pending) - pending.endswith("\r")  # a CR at the end may be the first half of a CRLF
        *lines, rest = _EOL.split(pending[:cut])
        pending = rest + pending[cut:]
        for line in lines:
            yield line
    if pending:  # the last line, unended (or ended by a lone CR)
        yield pending.removesuffix("\r")


def _stream_error(chunk: dict[str, Any]) -> int:
    code = (chunk.get("error") or {}).get("code") if isinstance(chunk.get("error"), dict) else None
    return code if isinstance(code, int) and 400 <= code < 600 else 500


async def _relay_stream(call: Call, resp: httpx.Response, chat: bool, want_usage: bool) -> AsyncIterator[str]:
    asm, status, final = Assembler(chat), 200, None
    try:
        async for line in event_lines(resp.aiter_text()):
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError:
                yield f"data: {data}\n\n"
                continue
            if isinstance(chunk, dict) and "error" in chunk:
                status, final = _stream_error(chunk), chunk
            elif isinstance(chunk, dict):
                asm.add(chunk)
                if not want_usage:
                    if chunk.get("usage") and not chunk.get("choices"):
                        continue
                    chunk.pop("usage", None)
            yield sse(chunk)
        call.usage = asm.usage
        final = final or asm.response()
    except (asyncio.CancelledError, GeneratorExit):
        call.usage = asm.usage
        call.finish_later(CLIENT_CLOSED, None)
        raise
    except httpx.HTTPError as err:
        status, final = 502, APIError(502, f"the upstream stream broke: {err}", code="upstream_unavailable").body()
        yield sse(final)
    finally:
        await resp.aclose()
    await call.finish(status, final)
    yield sse("[DONE]")


router = APIRouter()


async def _proxied(request: Request) -> Response:
    return await serve_call(request, ENDPOINTS.get(request.url.path, "models"), forward)


for _path in ENDPOINTS:
    router.add_api_route(_path, _proxied, methods=["POST"])
router.add_api_route("/v1/models", _proxied, methods=["GET"])
router.add_api_route("/v1/models/{model:path}", _proxied, methods=["GET"])


@router.get("/health")
async def health(request: Request) -> Response:
    state: ProxyState = request.app.state.server
    try:
        up = await state.client.get(state.upstream + "/health", timeout=10)  # type: ignore[union-attr]
        ok = up.status_code == 200
    except httpx.HTTPError:
        ok = False
    return JSONResponse({"status": "ok" if ok else "unavailable", "upstream": state.upstream},
                        status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return PlainTextResponse(request.app.state.server.metrics.text(), media_type=CONTENT_TYPE)


def create_proxy_app(state: ProxyState) -> FastAPI:
    """The gateway app in front of ``state.upstream``."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.client = httpx.AsyncClient(timeout=httpx.Timeout(state.timeout, connect=10.0))
        try:
            yield
        finally:
            await state.client.aclose()

    app = FastAPI(title="agentladder gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = state
    errors.install(app)
    app.include_router(router)
    return app


__all__ = ["Assembler", "ProxyState", "create_proxy_app", "forward", "upstream_error"]
