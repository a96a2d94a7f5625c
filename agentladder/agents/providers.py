"""Chat model providers: messages in, one assistant message (text or tool calls) out.

The agents runtime sees models only through :class:`ChatProvider`:

- :class:`ScriptedChat` answers from a script, for tests (text, tool calls, or a function);
- :class:`OpenAIChat` (``openai_compatible(url, model)``) calls any OpenAI-compatible
  ``/chat/completions`` server (vLLM, llama.cpp, Ollama, agentladder's own server, a cloud API),
  with native tool calls or, for servers that have none, the JSON fallback;
- :class:`~agentladder.agents.local.LocalChat` runs a local transformers model; several
  specialists tuned as LoRA adapters of one base share that base in memory;
- :class:`TextChat` wraps any evaluation provider (:mod:`agentladder.evals.providers`) that only
  returns text, reading tool calls out of the text.

:func:`chat_provider` turns a spec into one: a provider as is, ``openai:MODEL[@URL]``,
or a model alias / run folder / hub id for a local model.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentladder.agents.toolcalls import fallback_instructions, parse_tool_calls
from agentladder.data.schema import Message, ToolCall

ToolSpec = dict[str, Any]
"""A tool in OpenAI's shape: ``{"type": "function", "function": {"name", "description", "parameters"}}``."""


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass
class ChatResponse:
    """One model answer."""

    message: Message
    """The assistant turn: content, tool calls, or both."""
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    """The model that answered, as the provider names it."""
    finish_reason: str = "stop"
    seconds: float = 0.0
    """Time the provider spent (the runtime's overhead is measured outside it)."""


class ChatProvider(ABC):
    """Answers a conversation with one assistant message."""

    name: str = "chat"
    """The model's name in traces (``gen_ai.request.model``)."""
    provider_name: str = "agentladder"
    """``gen_ai.provider.name`` in traces (``openai``, ``agentladder.local``, ...)."""

    @abstractmethod
    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False) -> ChatResponse:
        """Answer ``messages``. ``tools`` are the calls the model may make; ``json_output`` says the
        answer should be one JSON object (a provider may stop generation after it)."""

    async def achat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
                    temperature: float = 0.0, json_output: bool = False) -> ChatResponse:
        """The async form; by default :meth:`chat` in a worker thread."""
        return await asyncio.to_thread(self.chat, messages, tools=tools, max_new_tokens=max_new_tokens,
                                       temperature=temperature, json_output=json_output)


def with_fallback_tools(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> list[Message]:
    """Messages with the JSON tool-calling instructions added to the system turn (a new one if none)."""
    msgs = list(messages)
    if not tools:
        return msgs
    text = fallback_instructions(tools)
    if msgs and msgs[0].role == "system":
        msgs[0] = msgs[0].model_copy(update={"content": f"{msgs[0].content}\n\n{text}"})
    else:
        msgs.insert(0, Message(role="system", content=text))
    return msgs


def tool_names(tools: Sequence[ToolSpec]) -> list[str]:
    return [t["function"]["name"] for t in tools]


# -- scripted -------------------------------------------------------------------------------------

Reply = str | Message | ToolCall | Sequence[ToolCall]


class ScriptedChat(ChatProvider):
    """Recorded answers, for tests: a list given in order, or a function of ``(messages, tools)``.

    Each answer is text, a :class:`ToolCall` (or a list of them), or a whole :class:`Message`.
    Every request is kept in :attr:`calls`. Token usage counts words, so traces carry numbers.
    """

    provider_name = "scripted"

    def __init__(self, replies: Sequence[Reply] | Callable[[list[Message], list[ToolSpec]], Reply], *,
                 name: str = "scripted", default: Reply | None = None):
        self.name = name
        self._replies = replies if callable(replies) else list(replies)
        self._next = 0
        self.default = default
        self.calls: list[dict[str, Any]] = []
        self.n_calls = 0

    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False) -> ChatResponse:
        messages, tools = list(messages), list(tools)
        self.calls.append({"messages": messages, "tools": tools})
        if callable(self._replies):
            reply = self._replies(messages, tools)
        elif self._next < len(self._replies):
            reply = self._replies[self._next]
            self._next += 1
        elif self.default is not None:
            reply = self.default
        else:
            raise IndexError(f"{self.name}: the script has only {len(self._replies)} answers")
        message = _as_message(reply, self)
        words = sum(len((m.content or "").split()) for m in messages)
        out_words = len((message.content or "").split()) + sum(len(json.dumps(c.arguments).split())
                                                                for c in message.tool_calls or [])
        finish = "tool_calls" if message.tool_calls else "stop"
        return ChatResponse(message, Usage(words, out_words), self.name, finish)

    async def achat(self, messages: Sequence[Message], **kwargs: Any) -> ChatResponse:
        return self.chat(messages, **kwargs)  # no thread: a script answers at once


def _as_message(reply: Reply, script: ScriptedChat) -> Message:
    if isinstance(reply, Message):
        return reply
    if isinstance(reply, str):
        return Message(role="assistant", content=reply)
    calls = [reply] if isinstance(reply, ToolCall) else list(reply)
    out = []
    for c in calls:
        script.n_calls += 1
        out.append(c if c.id else c.model_copy(update={"id": f"call-{script.n_calls}"}))
    return Message(role="assistant", tool_calls=out)


# -- OpenAI-compatible ----------------------------------------------------------------------------


class OpenAIChat(ChatProvider):
    """Any OpenAI-compatible ``/chat/completions`` server, with tool calls.

    ``tool_mode="native"`` sends the ``tools`` list and reads ``tool_calls`` back; ``"json"`` uses the
    JSON fallback in the system prompt, for servers of small models without tool calling.
    HTTP, retries and the key (``OPENAI_API_KEY``) are those of the evaluation provider
    (:class:`agentladder.evals.providers.OpenAIProvider`); ``transport`` replaces the HTTP call in tests.
    """

    provider_name = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 tool_mode: str = "native", timeout: float = 120.0, retries: int = 3,
                 transport: Callable[[str, dict, dict], dict] | None = None):
        from agentladder.evals.providers import OpenAIProvider

        if tool_mode not in ("native", "json"):
            raise ValueError(f"tool_mode must be 'native' or 'json', not {tool_mode!r}")
        self._http = OpenAIProvider(model, base_url=base_url, api_key=api_key, timeout=timeout, retries=retries,
                                    transport=transport)
        self.model = model
        self.name = model
        self.tool_mode = tool_mode

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False) -> ChatResponse:
        from agentladder.evals.providers import ProviderError

        start = time.perf_counter()
        msgs = list(messages)
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_new_tokens, "temperature": temperature}
        if tools and self.tool_mode == "native":
            body["tools"] = list(tools)
        elif tools:
            msgs = with_fallback_tools(msgs, tools)
        body["messages"] = [_openai_message(m, native=self.tool_mode == "native") for m in msgs]
        reply = self._http.request(body)
        try:
            choice = reply["choices"][0]
            raw = choice["message"]
        except (KeyError, IndexError, TypeError):
            raise ProviderError(f"{self.base_url} gave no choices[0].message: {json.dumps(reply)[:200]}") from None
        content = raw.get("content")
        calls = [ToolCall.model_validate(c) for c in raw.get("tool_calls") or []]
        if not calls and tools:
            content, calls = parse_tool_calls(content or "", tool_names(tools))
        if content is None and not calls:
            content = ""
        usage = reply.get("usage") or {}
        return ChatResponse(
            Message(role="assistant", content=content, tool_calls=calls or None),
            Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            reply.get("model", self.model), choice.get("finish_reason") or "stop", time.perf_counter() - start)


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


def openai_compatible(base_url: str, model: str, **kwargs: Any) -> OpenAIChat:
    """A provider for the OpenAI-compatible server at ``base_url`` (``http://localhost:8000/v1``)."""
    return OpenAIChat(model, base_url=base_url, **kwargs)


# -- any text provider ----------------------------------------------------------------------------


class TextChat(ChatProvider):
    """Wraps an evaluation provider (text out only): tools go in as the JSON fallback, calls are read from the text."""

    def __init__(self, provider: Any, *, name: str | None = None):
        self.provider = provider
        self.name = name or getattr(provider, "name", "text")

    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False) -> ChatResponse:
        start = time.perf_counter()
        msgs = with_fallback_tools(messages, tools)
        (text,) = self.provider.complete([msgs], max_new_tokens=max_new_tokens, temperature=temperature,
                                         stop_at_json=json_output or bool(tools))
        content, calls = parse_tool_calls(text, tool_names(tools))
        message = Message(role="assistant", content=content if content is not None else "", tool_calls=calls or None)
        return ChatResponse(message, Usage(), self.name, "tool_calls" if calls else "stop",
                            time.perf_counter() - start)


def chat_provider(spec: str | ChatProvider | Any) -> ChatProvider:
    """A chat provider from a spec: a provider as is, an evaluation provider (wrapped),
    ``openai:MODEL[@URL]``, or a local model (alias, run folder, hub id) from the shared pool."""
    if isinstance(spec, ChatProvider):
        return spec
    if not isinstance(spec, str):
        if hasattr(spec, "complete"):
            return TextChat(spec)
        raise TypeError(f"a model is a provider or a spec string, not {type(spec).__name__}")
    if spec.startswith("openai:"):
        model, _, url = spec[len("openai:"):].partition("@")
        if not model:
            raise ValueError(f"{spec!r}: write openai:MODEL or openai:MODEL@http://host:port/v1")
        return OpenAIChat(model, base_url=url or None)
    from agentladder.agents.local import LocalChat

    return LocalChat(spec)


def scripted_replies(mapping: Mapping[str, Reply], default: Reply | None = None) -> Callable[..., Reply]:
    """A script keyed by the last user turn's text, for :class:`ScriptedChat`."""

    def reply(messages: list[Message], tools: list[ToolSpec]) -> Reply:
        key = next((m.content for m in reversed(messages) if m.role == "user"), None)
        if key in mapping:
            return mapping[key]
        if default is not None:
            return default
        raise KeyError(f"no scripted answer for {key!r}")

    return reply
