"""From an OpenAI chat request to prompt tokens and a grammar, and from generated text back to a message.

**The prompt.** Messages become the project's :class:`~agentladder.data.schema.Message`
(``developer`` turns count as ``system``, text parts are joined) and go through the
model's chat template. Tools are shown the way the model's template knows: a template
that takes a ``tools`` list gets them natively (the model answers with
``<tool_call>{"name", "arguments"}</tool_call>``); any other (SmolLM2) gets the JSON
fallback in its system turn (``{"tool", "arguments"}``), exactly as the runtime's
local provider shows them.

**The grammar** (enforced while decoding, :mod:`~agentladder.serve.structured`):

| request | grammar |
| --- | --- |
| ``tool_choice: "required"`` | a call of one of the tools, arguments valid for its parameters |
| ``tool_choice: {"type": "function", ...}`` | a call of that tool |
| ``response_format: json_schema`` / ``json_object`` | the schema / any object; with tools on ``auto``: the schema or a call |
| tools on ``auto``, text answer | none: the model chooses, its calls are read back |

``tool_choice: "none"`` shows no tools. **The answer** is read back with the
runtime's own parser (:func:`~agentladder.models.providers.toolcalls.parse_tool_calls`):
an object that names an offered tool is a call, anything else is content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentladder.data.schema import Message, ToolCall
from agentladder.models.chat import _template_dicts, render
from agentladder.models.providers.toolcalls import parse_tool_calls, with_fallback_tools
from agentladder.serve.errors import APIError, bad_request
from agentladder.serve.schemas import ChatCompletionRequest, ChatMessage, NamedToolChoice
from agentladder.serve.structured import Grammar, GrammarError, Structured


@dataclass
class ChatPlan:
    """What a chat request asks the scheduler for."""

    prompt: list[int]
    tools: list[dict[str, Any]] = field(default_factory=list)
    """The offered tools (OpenAI shape); empty with ``tool_choice: "none"``."""
    grammar: Grammar | None = None
    calls_only: bool = False
    """The grammar admits only a tool call (``required`` or a named tool)."""

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.tools]


def to_messages(messages: list[ChatMessage]) -> list[Message]:
    """OpenAI messages as the project's schema (a 400 naming the message when one does not fit)."""
    out = []
    for i, m in enumerate(messages):
        role = "system" if m.role == "developer" else m.role
        try:
            calls = [ToolCall.model_validate({"id": c.id, "name": c.function.name, "arguments": c.function.arguments})
                     for c in m.tool_calls or []] if m.tool_calls else None
            out.append(Message(role=role, content=m.text if m.text is not None or calls else "", tool_calls=calls,
                               tool_call_id=m.tool_call_id if role == "tool" else None,
                               name=m.name if role == "tool" else None))
        except ValueError as err:
            raise bad_request(f"messages[{i}]: {str(err).splitlines()[-1].strip()}", f"messages[{i}]") from None
    return out


def native_tools(tokenizer: Any) -> bool:
    """Whether the chat template shows a ``tools`` list itself."""
    return "tools" in (tokenizer.chat_template or "")


def prompt_tokens(tokenizer: Any, messages: list[Message], tools: list[dict[str, Any]]) -> list[int]:
    if not tokenizer.chat_template:
        raise bad_request("this model has no chat template; use /v1/completions", "model")
    try:
        if tools and native_tools(tokenizer):
            text = tokenizer.apply_chat_template(_template_dicts(tokenizer, messages), tools=tools, tokenize=False,
                                                 add_generation_prompt=True)
        else:
            text = render(tokenizer, with_fallback_tools(messages, tools), add_generation_prompt=True)
    except Exception as err:  # jinja2 errors: the template refuses these messages (roles out of order, ...)
        raise bad_request(f"the chat template cannot render these messages: {err}", "messages") from None
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def call_schema(tools: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """A JSON schema admitting a call of any of ``tools``: ``{key: NAME, "arguments": {...}}``."""
    options = [{"type": "object",
                "properties": {key: {"const": t["function"]["name"]},
                               "arguments": t["function"].get("parameters") or {"type": "object"}},
                "required": [key, "arguments"], "additionalProperties": False} for t in tools]
    return options[0] if len(options) == 1 else {"anyOf": options}


def plan_chat(body: ChatCompletionRequest, tokenizer: Any, structured: Structured) -> ChatPlan:
    """Prompt tokens, offered tools and grammar for a chat request (400 for what cannot be served)."""
    messages = to_messages(body.messages)
    tools = [t.model_dump(exclude_none=True) for t in body.tools or []] if body.tool_choice != "none" else []
    plan = ChatPlan(prompt_tokens(tokenizer, messages, tools), tools)
    key = "name" if native_tools(tokenizer) else "tool"
    choice = body.tool_choice
    schema: dict[str, Any] | None = None
    source = "json_schema"
    if tools and (choice == "required" or isinstance(choice, NamedToolChoice)):
        chosen = [t for t in tools if not isinstance(choice, NamedToolChoice)
                  or t["function"]["name"] == choice.function.name]
        schema, source, plan.calls_only = call_schema(chosen, key), "tool_call", True
    elif body.response_format is not None and body.response_format.type != "text":
        fmt = body.response_format
        schema = fmt.json_schema.schema_ if fmt.type == "json_schema" and fmt.json_schema else {"type": "object"}
        source = fmt.type
        if tools:
            schema = {"anyOf": [schema, call_schema(tools, key)]}
    if schema is not None:
        try:
            plan.grammar = structured.json_schema(schema, source)
        except GrammarError as err:
            param = "tools" if source == "tool_call" else "response_format"
            raise bad_request(f"the {param} schema cannot be enforced: {err}", param) from None
    return plan


def read_answer(text: str, plan: ChatPlan) -> tuple[str | None, list[dict[str, Any]]]:
    """``(content, tool calls in OpenAI's shape)`` from a generated text."""
    if not plan.tools:
        return text, []
    content, calls = parse_tool_calls(text, plan.tool_names)
    if plan.calls_only and not calls:  # cut short by max_tokens: what there is stays content
        return text, []
    return content, [{"id": f"call_{c.id.split('-')[-1]}", "type": "function",
                      "function": {"name": c.name, "arguments": json.dumps(c.arguments)}} for c in calls]


def check_budget(prompt: int, requested: int | None, max_len: int, default: int | None, param: str) -> int:
    """The tokens a request may generate; 400 when the prompt, or the prompt and ``max_tokens``, do not fit."""
    if prompt >= max_len:
        raise APIError(400, f"This model's maximum context length is {max_len} tokens. However, your prompt "
                            f"has {prompt} tokens. Please shorten it.", param=param, code="context_length_exceeded")
    room = max_len - prompt
    if requested is not None and requested > room:
        raise APIError(400, f"This model's maximum context length is {max_len} tokens. However, you requested "
                            f"{prompt + requested} tokens ({prompt} in the prompt, {requested} for the completion). "
                            f"Please reduce the prompt or max_tokens.", param="max_tokens",
                       code="context_length_exceeded")
    if requested is not None:
        return requested
    return min(room, default) if default else room


__all__ = ["ChatPlan", "call_schema", "check_budget", "plan_chat", "read_answer", "to_messages"]
