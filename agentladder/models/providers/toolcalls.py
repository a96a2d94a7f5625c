"""Tool calls written as text: the ``<tool_call>`` blocks of tool-calling chat templates, and a JSON fallback.

Models whose chat template takes a ``tools`` list (Qwen, Hermes, SmolLM3,
Llama 3.1+, ...) are shown the tools by the template and answer with
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``. Small models
without that (SmolLM2) get the JSON fallback: the tools are described in the
system prompt and the model calls one by answering with only
``{"tool": NAME, "arguments": {...}}``. :func:`parse_tool_calls` reads both;
a JSON object counts as a call only when it names one of the offered tools,
so a structured answer is never mistaken for a call.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from agentladder.data.schema import Message, ToolCall

ToolSpec = dict[str, Any]
"""A tool in OpenAI's shape: ``{"type": "function", "function": {"name", "description", "parameters"}}``."""

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_DECODER = json.JSONDecoder()


def tool_names(tools: Sequence[ToolSpec]) -> list[str]:
    """The names of the offered tools."""
    return [t["function"]["name"] for t in tools]


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


def reply_message(text: str, tools: Sequence[ToolSpec]) -> Message:
    """The assistant message a model's text stands for: its tool calls read out, the rest as content."""
    content, calls = parse_tool_calls(text, tool_names(tools))
    return Message(role="assistant", content=content if content is not None else "", tool_calls=calls or None)


def fallback_instructions(tools: Sequence[ToolSpec]) -> str:
    """The system-prompt text that teaches a model without native tool calling to call ``tools`` (OpenAI shape)."""
    lines = ["You can call tools. To call one, reply with only a JSON object: "
             '{"tool": "<name>", "arguments": {...}}. '
             "You will get its result, then answer. Tools:"]
    for entry in tools:
        fn = entry["function"]
        props = fn.get("parameters", {}).get("properties", {})
        args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in props.items())
        lines.append(f"- {fn['name']}({args}): {fn.get('description', '')}".rstrip(": "))
    return "\n".join(lines)


def parse_tool_calls(text: str, tool_names: Sequence[str]) -> tuple[str | None, list[ToolCall]]:
    """``(content left over, calls)`` read from a model's text; no calls when none names an offered tool."""
    names = set(tool_names)
    if not names or not text:
        return text, []
    calls: list[ToolCall] = []
    for block in _TAGGED.findall(text):
        call = _as_call(_first_object(block), names)
        if call is not None:
            calls.append(call)
    if calls:
        rest = _TAGGED.sub("", text).strip()
        return rest or None, calls
    start = text.find("{")
    while start != -1:
        try:
            obj, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        call = _as_call(obj, names)
        if call is not None:
            rest = (text[:start] + text[end:]).strip()
            return rest or None, [call]
        start = text.find("{", end)
    return text, []


def _first_object(text: str) -> Any:
    start = text.find("{")
    if start == -1:
        return None
    try:
        return _DECODER.raw_decode(text, start)[0]
    except json.JSONDecodeError:
        return None


def _as_call(obj: Any, names: set[str]) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    name = obj.get("tool", obj.get("name"))
    if not isinstance(name, str) or name not in names:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None
    if not isinstance(args, dict):
        return None
    return ToolCall(id=f"call-{uuid.uuid4().hex[:8]}", name=name, arguments=args)
