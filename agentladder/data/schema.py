"""The one conversation schema, and the row types built on it.

A conversation is a list of messages (system, user, assistant, tool) with
tool calls, a flag per message saying whether it is trained on, the rewards
attached to it and free metadata. The agents runtime writes it, datasets
store it, trainers read it and evals score it.

Row types for each rung:

- :class:`Conversation` is also the SFT row: every assistant turn whose
  ``trainable`` flag is not false is trained on, nothing else is.
- :class:`TextRow` is raw text for continued pre-training (every token trained).
- :class:`PreferencePair` holds a shared prompt and a chosen and a rejected
  continuation (DPO family); :class:`MarkedResponse` a single continuation
  marked desirable or not (KTO).
- :class:`GradedResponse` is a single continuation with a grade (1-5) and its reasons (reward models, judges).
- :class:`RLPrompt` is a prompt plus what the grader needs to score a response.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "user", "assistant", "tool"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    """``(field, role)`` pairs whose value may be given as a bare string: one turn of that role."""

    @model_validator(mode="before")
    @classmethod
    def _strings_to_messages(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.message_fields:
            data = dict(data)
            for key, role in cls.message_fields:
                if key in data:
                    data[key] = _as_messages(data[key], role, key)
        return data


class ToolCall(_Strict):
    """A function call made by an assistant turn (OpenAI's shape, flattened)."""

    id: str | None = None
    """Identifier the matching ``tool`` message refers back to."""
    name: str
    """Name of the tool called."""
    arguments: dict[str, Any] = Field(default_factory=dict)
    """Arguments as a JSON object (a JSON string is parsed on load)."""

    @model_validator(mode="before")
    @classmethod
    def _flatten_openai_shape(cls, data: Any) -> Any:
        # Accept {"id", "type": "function", "function": {"name", "arguments": "<json>"}}.
        if isinstance(data, dict) and "function" in data:
            fn = data["function"] or {}
            data = {"id": data.get("id"), "name": fn.get("name"), "arguments": fn.get("arguments", {})}
        if isinstance(data, dict) and isinstance(data.get("arguments"), str):
            text = data["arguments"]
            try:
                data = {**data, "arguments": json.loads(text) if text.strip() else {}}
            except json.JSONDecodeError as err:
                raise ValueError(f"arguments is not valid JSON: {err.msg}") from None
        return data

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments)},
        }


class Message(_Strict):
    """One turn of a conversation."""

    role: Role
    content: str | None = None
    """Text of the turn; may be empty for an assistant turn that only calls tools."""
    tool_calls: list[ToolCall] | None = None
    """Tool calls made by an assistant turn."""
    tool_call_id: str | None = None
    """For a ``tool`` turn: the id of the call it answers."""
    name: str | None = None
    """For a ``tool`` turn: the tool's name."""
    trainable: bool | None = None
    """Whether the tokens of this turn carry loss. ``None`` means the default:
    assistant turns are trained, every other role never is."""

    @model_validator(mode="after")
    def _check(self) -> Message:
        if self.trainable and self.role != "assistant":
            raise ValueError(f"only assistant turns can be trainable, not a {self.role} turn")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant turns can make tool calls")
        if self.content is None and not self.tool_calls:
            raise ValueError("a message needs content or tool_calls")
        return self

    @property
    def is_trained(self) -> bool:
        return self.role == "assistant" and self.trainable is not False

    def to_template_dict(self) -> dict[str, Any]:
        """The dict a Hugging Face chat template expects."""
        out: dict[str, Any] = {"role": self.role, "content": self.content or ""}
        if self.tool_calls:
            out["tool_calls"] = [tc.to_openai() for tc in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


def _as_messages(value: Any, role: str = "user", field: str = "prompt") -> list:
    """Accept a bare string where a list of messages is expected (one turn of ``role``)."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if not isinstance(value, list):
        raise ValueError(f"{field} must be a string or a list of messages, not {type(value).__name__}")
    return value


class Conversation(_Strict):
    """A conversation: the unit every part of agentladder exchanges.

    Also the SFT row. ``prompt``/``completion`` rows are accepted on load and
    turned into messages (the completion is one trainable assistant turn).
    """

    id: str | None = None
    messages: list[Message] = Field(min_length=1)
    rewards: dict[str, float] = Field(default_factory=dict)
    """Named reward components attached to the conversation (e.g. by a grader)."""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_prompt_completion(cls, data: Any) -> Any:
        if isinstance(data, dict) and "messages" not in data and "completion" in data:
            data = dict(data)
            prompt = _as_messages(data.pop("prompt", []))
            completion = _as_messages(data.pop("completion"), "assistant", "completion")
            data["messages"] = prompt + completion
        return data

    @property
    def has_trainable_turn(self) -> bool:
        return any(m.is_trained for m in self.messages)


class TextRow(_Strict):
    """Raw text for continued pre-training: every token is trained on."""

    id: str | None = None
    text: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class PreferencePair(_Strict):
    """A prompt with a preferred and a rejected continuation."""

    id: str | None = None
    prompt: list[Message] = Field(min_length=1)
    chosen: list[Message] = Field(min_length=1)
    rejected: list[Message] = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    message_fields: ClassVar[tuple[tuple[str, str], ...]] = (("prompt", "user"), ("chosen", "assistant"), ("rejected", "assistant"))


class MarkedResponse(_Strict):
    """A single continuation marked desirable (``label=True``) or not (KTO)."""

    id: str | None = None
    prompt: list[Message] = Field(min_length=1)
    completion: list[Message] = Field(min_length=1)
    label: bool
    metadata: dict[str, Any] = Field(default_factory=dict)

    message_fields: ClassVar[tuple[tuple[str, str], ...]] = (("prompt", "user"), ("completion", "assistant"))


class GradedResponse(_Strict):
    """A single continuation with an expert's grade on a scale (1-5 by default) and, optionally, the reasons.

    Reward models regress on the grade; a tuned judge learns to write the grade and the reasons.
    """

    id: str | None = None
    prompt: list[Message] = Field(min_length=1)
    completion: list[Message] = Field(min_length=1)
    grade: float
    """The grade, inside the scale the reader is given (``agentladder.data.feedback``)."""
    reasons: str | None = None
    """Why the grade was given, in the grader's words."""
    metadata: dict[str, Any] = Field(default_factory=dict)

    message_fields: ClassVar[tuple[tuple[str, str], ...]] = (("prompt", "user"), ("completion", "assistant"))


class RLPrompt(_Strict):
    """A prompt for RL, plus what the grader needs to score a response."""

    id: str | None = None
    prompt: list[Message] = Field(min_length=1)
    target: Any = None
    """Ground truth for verifiable graders (any JSON value)."""
    metadata: dict[str, Any] = Field(default_factory=dict)

    message_fields: ClassVar[tuple[tuple[str, str], ...]] = (("prompt", "user"),)
