"""Any OpenAI-compatible ``/chat/completions`` endpoint, through the official ``openai`` client.

vLLM, llama.cpp's server, Ollama, agentladder's own server or a cloud API:
the client brings the retries (429, 5xx and dropped connections, with
exponential backoff), the timeouts and the typed errors; each error reaches
the user as one :class:`~agentladder.models.providers.base.ProviderError`
line. The key comes from ``OPENAI_API_KEY``, the default address from
``OPENAI_BASE_URL``.

Tools go as the native ``tools`` list (``tool_mode="native"``) or, for servers
of small models without tool calling, as the JSON fallback in the system turn
(``tool_mode="json"``), the calls then read back from the text. With
``on_text`` the answer is streamed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from agentladder.data.schema import Message, ToolCall
from agentladder.errors import ConfigError
from agentladder.models.providers.base import (
    ChatResponse,
    ProgressFn,
    Prompt,
    Provider,
    ProviderError,
    TextFn,
    Usage,
)
from agentladder.models.providers.toolcalls import (
    ToolSpec,
    parse_tool_calls,
    tool_names,
    with_fallback_tools,
)

NO_KEY = "not-needed"
"""Sent as the key when none is set: local servers ignore it, and the client requires one."""


class OpenAIProvider(Provider):
    """An OpenAI-compatible endpoint (see the module docstring).

    ``concurrency`` bounds the requests :meth:`complete` has in flight; ``retries`` and
    ``timeout`` (seconds) go to the client. ``client`` replaces the ``openai.OpenAI`` client.
    """

    provider_name = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 4, timeout: float = 120.0, retries: int = 3, tool_mode: str = "native",
                 name: str | None = None, client: openai.OpenAI | None = None):
        if tool_mode not in ("native", "json"):
            raise ConfigError(f"tool_mode must be 'native' or 'json', not {tool_mode!r}")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.concurrency = concurrency
        self.batch_size = max(8, concurrency)
        self.timeout, self.retries = timeout, retries
        self.tool_mode = tool_mode
        self.name = name or model
        self._client = client
        self._async: openai.AsyncOpenAI | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    @property
    def client(self) -> openai.OpenAI:
        if self._client is None:
            self._client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key or NO_KEY,
                                         timeout=self.timeout, max_retries=self.retries)
        return self._client

    def _body(self, messages: Sequence[Message], tools: Sequence[ToolSpec], max_new_tokens: int,
              temperature: float) -> dict[str, Any]:
        native = self.tool_mode == "native"
        msgs = list(messages) if native else with_fallback_tools(messages, tools)
        body: dict[str, Any] = {"model": self.model, "messages": [_openai_message(m, native=native) for m in msgs],
                                "max_tokens": max_new_tokens, "temperature": temperature}
        if tools and native:
            body["tools"] = list(tools)
        return body

    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False, on_text: TextFn | None = None) -> ChatResponse:
        start = time.perf_counter()
        body = self._body(messages, tools, max_new_tokens, temperature)
        with self._errors():
            if on_text is None:
                raw = self.client.chat.completions.create(**body).model_dump()
            else:
                stream = self.client.chat.completions.create(**body, stream=True,
                                                             stream_options={"include_usage": True})
                raw = _gather(stream, on_text)
        return self._response(raw, tools, time.perf_counter() - start)

    async def achat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
                    temperature: float = 0.0, json_output: bool = False,
                    on_text: TextFn | None = None) -> ChatResponse:
        if on_text is not None:  # streaming goes through the blocking client in a thread
            return await super().achat(messages, tools=tools, max_new_tokens=max_new_tokens,
                                       temperature=temperature, json_output=json_output, on_text=on_text)
        start = time.perf_counter()
        with self._errors():
            reply = await self._async_client().chat.completions.create(
                **self._body(messages, tools, max_new_tokens, temperature))
        return self._response(reply.model_dump(), tools, time.perf_counter() - start)

    def _async_client(self) -> openai.AsyncOpenAI:
        """The async client of the running event loop.

        Its pooled connections belong to the loop that opened them, and a synchronous caller
        (``Workflow.run``) runs each call in a loop of its own, so a client is kept per loop: one
        carried over would write to a closed loop's sockets.
        """
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            self._async = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or NO_KEY,
                                             timeout=self.timeout, max_retries=self.retries)
            self._async_loop = loop
        return self._async

    def complete(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 stop_at_json: bool = False, progress: ProgressFn | None = None) -> list[str]:
        def one(prompt: Prompt) -> str:
            text = self.chat(prompt, max_new_tokens=max_new_tokens, temperature=temperature).message.content
            if progress is not None:
                progress(1)
            return text or ""

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, prompts))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """The client's typed errors as one :class:`ProviderError` line."""
        url = f"{self.base_url}/chat/completions"
        try:
            yield
        except openai.APIStatusError as err:
            detail = (err.response.text or "").strip()[:200] or err.message
            raise ProviderError(f"{url} answered HTTP {err.status_code}: {detail}") from None
        except openai.APIConnectionError as err:
            reason = err.__cause__ or err.message
            raise ProviderError(f"cannot reach {url}: {reason}") from None
        except openai.OpenAIError as err:
            raise ProviderError(f"{url}: {err}") from None

    def _response(self, raw: dict[str, Any], tools: Sequence[ToolSpec], seconds: float) -> ChatResponse:
        try:
            choice = raw["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError):
            raise ProviderError(f"{self.base_url}/chat/completions gave no choices[0].message: "
                                f"{json.dumps(raw, default=str)[:200]}") from None
        content = message.get("content")
        calls = [ToolCall.model_validate(_plain_call(c)) for c in message.get("tool_calls") or []]
        if not calls and tools:
            content, calls = parse_tool_calls(content or "", tool_names(tools))
        if content is None and not calls:
            content = ""
        usage = raw.get("usage") or {}
        return ChatResponse(Message(role="assistant", content=content, tool_calls=calls or None),
                            Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
                            raw.get("model") or self.model, choice.get("finish_reason") or "stop", seconds)


def _plain_call(call: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call as the schema reads it (the client's dump carries extra ``None`` fields)."""
    fn = call.get("function") or {}
    return {"id": call.get("id"), "type": "function",
            "function": {"name": fn.get("name"), "arguments": fn.get("arguments") or "{}"}}


def _gather(stream: Any, on_text: TextFn) -> dict[str, Any]:
    """A streamed answer put back together as a non-streamed one, its text passed on piece by piece."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    out: dict[str, Any] = {"choices": [{"message": {}, "finish_reason": None}]}
    for chunk in stream:
        out["model"] = chunk.model or out.get("model")
        if chunk.usage is not None:
            out["usage"] = chunk.usage.model_dump()
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                text.append(delta.content)
                on_text(delta.content)
            for c in delta.tool_calls or []:
                slot = calls.setdefault(c.index, {"id": None, "function": {"name": "", "arguments": ""}})
                slot["id"] = c.id or slot["id"]
                if c.function is not None:
                    slot["function"]["name"] += c.function.name or ""
                    slot["function"]["arguments"] += c.function.arguments or ""
            if choice.finish_reason:
                out["choices"][0]["finish_reason"] = choice.finish_reason
    message = out["choices"][0]["message"]
    message["content"] = "".join(text) if text else None
    message["tool_calls"] = [calls[i] for i in sorted(calls)] or None
    return out


def _openai_message(m: Message, *, native: bool) -> dict[str, Any]:
    if native:
        out: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            out["tool_calls"] = [c.to_openai() for c in m.tool_calls]
        if m.tool_call_id is not None:
            out["tool_call_id"] = m.tool_call_id
        if m.role == "tool" and m.name:
            out["name"] = m.name
        return out
    # Without native tool calling, calls and results travel as text.
    content = m.content or ""
    for call in m.tool_calls or []:
        content += ("\n" if content else "") + json.dumps({"tool": call.name, "arguments": call.arguments})
    if m.role == "tool":
        return {"role": "user", "content": f"Result of {m.name or 'the tool'}: {content}"}
    return {"role": m.role, "content": content}


def openai_compatible(base_url: str, model: str, **kwargs: Any) -> OpenAIProvider:
    """A provider for the OpenAI-compatible server at ``base_url`` (``http://localhost:8000/v1``)."""
    return OpenAIProvider(model, base_url=base_url, **kwargs)


def parse_openai_spec(spec: str) -> tuple[str, str | None]:
    """``openai:MODEL[@URL]`` as ``(MODEL, URL or None)``."""
    model, _, url = spec[len("openai:"):].partition("@")
    if not model:
        raise ConfigError(f"{spec!r}: write openai:MODEL or openai:MODEL@http://host:port/v1")
    return model, url or None
