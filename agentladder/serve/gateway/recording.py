"""Served calls as the runtime's traces: trajectories in its store, spans with the GenAI attributes.

A key created with ``--record`` has each successful chat call stored as one trajectory
per choice in the agents runtime's store (:class:`~agentladder.agents.store.Store`,
the same table and :class:`~agentladder.data.schema.Conversation` schema an agent run
writes): the request's messages, then the answer as a trainable assistant turn (its
tool calls included). The columns: ``agent`` and ``model`` are the requested model,
``session`` the key's id, ``run_id`` the response's id, ``status`` ``ok``; metadata
keeps ``source: "serve"``, the team, the key, the finish reason, and the request's
``tools`` and ``response_format`` when it had them. So ``agentladder traces export
--to sft|preference|rl --where "agent == parser"`` turns served traffic into training rows.

Every call through the gateway, recorded or not, also gets a span named
``{operation} {model}`` (``chat parser``, ``text_completion tiny``, ``embeddings ...``)
with the attributes the runtime's ``chat`` spans carry (:mod:`agentladder.agents.tracing`):
``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.request.max_tokens``, ``gen_ai.request.temperature``,
``gen_ai.usage.input_tokens`` / ``output_tokens``, ``gen_ai.response.finish_reasons``,
plus ``agentladder.team``, ``agentladder.key.id``, ``http.response.status_code`` and
``agentladder.trajectory.id`` when recorded; a failed call's span has status ERROR and
``error.type``. Spans go to the store's ``spans`` table and to an OTLP endpoint when one
is set, through the runtime's tracer provider.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.trace import Status, StatusCode, Tracer
from pydantic import ValidationError

from agentladder.agents import tracing as sc
from agentladder.agents.store import Store, new_id
from agentladder.data.schema import Conversation, Message

log = logging.getLogger("agentladder.serve")

OPERATIONS = {"/v1/chat/completions": "chat", "/v1/completions": "text_completion", "/v1/embeddings": "embeddings"}
TEAM, KEY_ID, HTTP_STATUS = "agentladder.team", "agentladder.key.id", "http.response.status_code"


def _text(content: Any) -> str | None:
    """OpenAI message content (a string, or a list of parts) as text."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def to_message(raw: dict[str, Any], *, trainable: bool | None = None) -> Message:
    """An OpenAI chat message as the project's :class:`Message` (``developer`` is a system turn)."""
    role = "system" if raw.get("role") == "developer" else raw.get("role")
    calls = raw.get("tool_calls") or None
    content = _text(raw.get("content"))
    if content is None and not calls:
        content = ""
    fields = {"role": role, "content": content, "tool_calls": calls, "tool_call_id": raw.get("tool_call_id"),
              "name": raw.get("name") if role == "tool" else None}
    if role == "assistant":
        fields["trainable"] = trainable
    return Message.model_validate({k: v for k, v in fields.items() if v is not None})


def conversations(body: dict[str, Any], response: dict[str, Any], *, team: str | None,
                  key_id: str | None) -> list[Conversation]:
    """One conversation per choice of a chat answer: the request's turns (context), then the answer."""
    prompt = [to_message(m, trainable=False) for m in body.get("messages", [])]
    meta: dict[str, Any] = {"source": "serve", "team": team, "key": key_id, "request_id": response.get("id")}
    for field_ in ("tools", "response_format"):
        if body.get(field_):
            meta[field_] = body[field_]
    out = []
    for choice in response.get("choices", []):
        answer = to_message(choice["message"])
        out.append(Conversation(id=new_id("traj"), messages=[*prompt, answer],
                                metadata={**meta, "finish_reason": choice.get("finish_reason"),
                                          "choice": choice.get("index", 0)}))
    return out


def record_call(store: Store, body: dict[str, Any], response: dict[str, Any], *, model: str,
                team: str | None, key_id: str | None) -> list[str]:
    """Store a chat call's choices as trajectories; their ids (none when the call cannot be read as one)."""
    try:
        convs = conversations(body, response, team=team, key_id=key_id)
    except (ValidationError, KeyError, TypeError, AttributeError) as err:
        log.warning("call %s not recorded: %s", response.get("id"), str(err).splitlines()[0])
        return []
    return [store.trajectory_add(c, session=key_id, run_id=response.get("id"), step=None, agent=model,
                                 model=response.get("model") or model, status="ok") for c in convs]


def call_span(tracer: Tracer, *, endpoint: str, provider: str, model: str | None, body: dict[str, Any] | None,
              response: dict[str, Any] | None, status: int, usage: tuple[int, int] | None, start_ns: int,
              end_ns: int, team: str | None, key_id: str | None, trajectory: str | None) -> None:
    """One finished call as a span with the GenAI attributes (see the module docstring)."""
    operation = OPERATIONS.get(endpoint, endpoint.rsplit("/", 1)[-1])
    body = body or {}
    attrs: dict[str, Any] = {sc.OPERATION: operation, sc.PROVIDER: provider, HTTP_STATUS: status}
    for name, value in ((sc.REQUEST_MODEL, model), (TEAM, team), (KEY_ID, key_id), (sc.TRAJECTORY_ID, trajectory)):
        if value is not None:
            attrs[name] = value
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        attrs[sc.MAX_TOKENS] = max_tokens
    if isinstance(body.get("temperature"), int | float) and not isinstance(body.get("temperature"), bool):
        attrs[sc.TEMPERATURE] = float(body["temperature"])
    if usage is not None:
        attrs[sc.INPUT_TOKENS], attrs[sc.OUTPUT_TOKENS] = usage
    if response and "choices" in response:
        attrs[sc.RESPONSE_MODEL] = response.get("model") or model or ""
        attrs[sc.FINISH_REASONS] = [str(c.get("finish_reason")) for c in response["choices"]]
    span = tracer.start_span(f"{operation} {model or ''}".strip(), attributes=attrs, start_time=start_ns)
    if status >= 400:
        error = (response or {}).get("error") or {}
        span.set_status(Status(StatusCode.ERROR, str(error.get("message", ""))[:500]))
        span.set_attribute(sc.ERROR_TYPE, str(error.get("code") or error.get("type") or status))
    span.end(end_time=end_ns)


__all__ = ["OPERATIONS", "call_span", "conversations", "record_call", "to_message"]
