"""A provider that answers from a script, so tests need no model and no network.

The script is a list (answered in order), a mapping keyed by the content of
the last user turn, or a function of the messages (or of ``(messages,
tools)``). Each answer is text, a :class:`~agentladder.data.schema.ToolCall`
(or a list of them), or a whole :class:`~agentladder.data.schema.Message`.
Every call is recorded in :attr:`ScriptedProvider.calls`.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentladder.data.schema import Message, ToolCall
from agentladder.errors import ConfigError
from agentladder.models.providers.base import ChatResponse, Provider, TextFn, Usage
from agentladder.models.providers.toolcalls import ToolSpec, reply_message, with_fallback_tools

Reply = str | Message | ToolCall | Sequence[ToolCall]
Script = Sequence[Reply] | Mapping[str, Reply] | Callable[..., Reply]


class ScriptedCall(Sequence[Message]):
    """One recorded call: it reads as its list of messages, and names the tools offered."""

    def __init__(self, messages: list[Message], tools: list[ToolSpec]):
        self.messages, self.tools = messages, tools

    def __getitem__(self, i):  # type: ignore[override]
        return self.messages[i]

    def __len__(self) -> int:
        return len(self.messages)

    def __eq__(self, other: object) -> bool:
        return list(self.messages) == list(other) if isinstance(other, Sequence) else NotImplemented

    def __repr__(self) -> str:
        return f"ScriptedCall({self.messages!r}, tools={[t['function']['name'] for t in self.tools]})"


class ScriptedProvider(Provider):
    """Recorded answers, for tests (see the module docstring).

    ``default`` answers once a list runs out or a mapping has no key. With ``tool_mode="json"``
    the tools are offered as the JSON fallback in the system turn and text answers are read for
    calls, as a model without native tool calling is treated. Usage counts words, so traces carry numbers.
    """

    provider_name = "scripted"

    def __init__(self, replies: Script, *, name: str = "scripted", default: Reply | None = None,
                 tool_mode: str = "native"):
        if tool_mode not in ("native", "json"):
            raise ConfigError(f"tool_mode must be 'native' or 'json', not {tool_mode!r}")
        self.name = name
        self._replies: Any = replies if callable(replies) or isinstance(replies, Mapping) else list(replies)
        self._takes_tools = callable(replies) and _positional_count(replies) >= 2
        self._next = 0
        self.default = default
        self.tool_mode = tool_mode
        self.calls: list[ScriptedCall] = []
        self.n_calls = 0

    def _reply(self, messages: list[Message], tools: list[ToolSpec]) -> Reply:
        if callable(self._replies):
            return self._replies(messages, tools) if self._takes_tools else self._replies(messages)
        if isinstance(self._replies, Mapping):
            key = next((m.content for m in reversed(messages) if m.role == "user"), None)
            if key in self._replies:
                return self._replies[key]
            if self.default is not None:
                return self.default
            raise KeyError(f"{self.name}: no scripted answer for {key!r}")
        if self._next < len(self._replies):
            self._next += 1
            return self._replies[self._next - 1]
        if self.default is not None:
            return self.default
        raise IndexError(f"{self.name}: the script has only {len(self._replies)} answers")

    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False, on_text: TextFn | None = None) -> ChatResponse:
        start = time.perf_counter()
        tools = list(tools)
        messages = with_fallback_tools(messages, tools) if self.tool_mode == "json" else list(messages)
        self.calls.append(ScriptedCall(messages, tools))
        reply = self._reply(messages, tools)
        if isinstance(reply, str) and self.tool_mode == "json" and tools:
            message = reply_message(reply, tools)
        else:
            message = self._as_message(reply)
        if on_text is not None and message.content:
            on_text(message.content)
        words = sum(len((m.content or "").split()) for m in messages)
        out_words = len((message.content or "").split()) + sum(len(json.dumps(c.arguments).split())
                                                                for c in message.tool_calls or [])
        finish = "tool_calls" if message.tool_calls else "stop"
        return ChatResponse(message, Usage(words, out_words), self.name, finish, time.perf_counter() - start)

    async def achat(self, messages: Sequence[Message], **kwargs: Any) -> ChatResponse:
        return self.chat(messages, **kwargs)  # no thread: a script answers at once

    def _as_message(self, reply: Reply) -> Message:
        if isinstance(reply, Message):
            return reply
        if isinstance(reply, str):
            return Message(role="assistant", content=reply)
        calls = [reply] if isinstance(reply, ToolCall) else list(reply)
        out = []
        for c in calls:
            self.n_calls += 1
            out.append(c if c.id else c.model_copy(update={"id": f"call-{self.n_calls}"}))
        return Message(role="assistant", tool_calls=out)


def _positional_count(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` takes (a script function takes messages, or messages and tools)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)

