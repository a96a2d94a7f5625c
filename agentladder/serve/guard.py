"""The guard at the gateway: the agents runtime's :class:`~agentladder.agents.guard.Guard` on every API call.

Two hook classes plug the same checks into the server's seam (:mod:`agentladder.serve.hooks`):
:class:`GuardHooks` for a server without keys (``agentladder serve --guard guard.yaml``), and
:class:`GuardGateway`, the gateway (:class:`~agentladder.serve.gateway.GatewayHooks`: keys,
limits, usage rows) with a guard in its ``check_request`` seam: the key's own policy
(``keys create --guard``) or else the server's (``--guard``). For every call:

- **the request**, before the model, the metrics, a recording or any later hook reads it: every
  chat message (``user``, ``system``, ``developer`` as ``input``; ``tool`` as ``tool_result``;
  earlier ``assistant`` turns and their tool-call arguments as ``output``), every completion
  prompt and embedding input is checked and masked *in the body itself*. A blocked text (a denied
  topic, an injection, a personal-data type the policy blocks) refuses the call with the server's
  error shape: HTTP 400, ``{"error": {"message", "type": "invalid_request_error", "param",
  "code": "content_policy_violation"}}``;
- **the answer**, not streamed, in ``respond`` before it is sent: each choice's text and tool-call
  arguments are checked as ``output`` and masked; a blocked answer is withheld as OpenAI withholds
  one (``content: null``, ``finish_reason: "content_filter"``). A streamed answer has already been
  sent when it is complete: it is checked in ``finish`` (audited and counted), not masked;
- **audit and cost**: every intervention is a ``guard`` row in the runtime's trace store (endpoint,
  model, account, policy, where, the rule that fired, the findings: types, spans, scores, never
  the text) and each call a ``guard_usage`` row (checks, characters, seconds, blocked); at the
  gateway the call's usage row also gets ``guard_checks`` and ``guard_blocked``, which
  ``agentladder usage`` sums per key or team.

``replace`` placeholders are kept per conversation: the ``X-Conversation-Id`` header when the
client sends one, else the call (a resent history is masked in the same order, so the same
person keeps the same placeholder in every call of a conversation).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request

from agentladder.agents.guard import Guard, GuardResult, GuardUsage
from agentladder.agents.store import Store
from agentladder.errors import AgentladderError
from agentladder.serve.errors import APIError
from agentladder.serve.gateway.hooks import Admission, GatewayHooks
from agentladder.serve.hooks import CallUsage, Gateway, ServerHooks

CONVERSATION_HEADER = "x-conversation-id"
_ROLE_WHERE = {"user": "input", "system": "input", "developer": "input", "tool": "tool_result",
               "assistant": "output"}


@dataclass
class GuardCall:
    """One call's checks: which guard, whose cost, which conversation, what was found."""

    guard: Guard
    endpoint: str
    model: str | None
    account: str | None
    team: str | None
    conversation: str
    forget: bool
    """Whether the placeholder table is the call's own (no ``X-Conversation-Id``), dropped when it ends."""
    results: list[GuardResult] = field(default_factory=list)
    seconds: float = 0.0
    responded: bool = False

    @classmethod
    def of(cls, guard: Guard, request: Request, model: str | None, account: str | None = None,
           team: str | None = None) -> GuardCall:
        header = request.headers.get(CONVERSATION_HEADER)
        return cls(guard, request.url.path, model, account, team, header or uuid.uuid4().hex, header is None)

    def check(self, text: str, where: str) -> GuardResult:
        result = self.guard.check(text, where, conversation_id=self.conversation, account=self.account)
        self.results.append(result)
        return result

    @property
    def blocked(self) -> int:
        return sum(r.blocked for r in self.results)


# -- what is checked ---------------------------------------------------------------------------------

def check_request(call: GuardCall, body: dict[str, Any]) -> GuardResult | None:
    """Mask ``body`` in place (messages, prompts, embedding inputs); the first blocking result, if any."""
    blocked: list[GuardResult] = []

    def text(value: Any, where: str) -> Any:
        if not isinstance(value, str) or not value:
            return value
        result = call.check(value, where)
        if result.blocked:
            blocked.append(result)
        return result.text

    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        where = _ROLE_WHERE.get(message.get("role"), "input")  # type: ignore[arg-type]
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text":
                    part["text"] = text(part.get("text"), where)
        else:
            message["content"] = text(content, where)
        for tool_call in message.get("tool_calls") or []:
            function = tool_call.get("function") if isinstance(tool_call, dict) else None
            if isinstance(function, dict):
                function["arguments"] = _arguments(call, function.get("arguments"), blocked)
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            body[key] = text(value, "input")
        elif isinstance(value, list):
            body[key] = [text(v, "input") for v in value]
    return blocked[0] if blocked else None


def _arguments(call: GuardCall, arguments: Any, blocked: list[GuardResult]) -> Any:
    """Tool-call arguments (a JSON string or an object) with every string in them checked as ``output``."""
    value = arguments
    if isinstance(arguments, str):
        try:
            value = json.loads(arguments)
        except json.JSONDecodeError:
            value = arguments
    masked, results = call.guard.check_value(value, "output", conversation_id=call.conversation,
                                             account=call.account, raise_blocked=False)
    call.results += results
    blocked += [r for r in results if r.blocked]
    if not results:
        return arguments
    if isinstance(arguments, str) and not isinstance(masked, str):
        return json.dumps(masked, ensure_ascii=False)
    return masked


def check_answer(call: GuardCall, response: dict[str, Any], *, mask: bool) -> None:
    """Each choice's text and tool-call arguments checked as ``output``; masked (or withheld) when ``mask``."""
    for choice in response.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        chat = isinstance(choice.get("message"), dict)
        holder, key = (choice["message"], "content") if chat else (choice, "text")
        blocked: list[GuardResult] = []
        if isinstance(holder.get(key), str) and holder[key]:
            result = call.check(holder[key], "output")
            blocked += [result] if result.blocked else []
            if mask:
                holder[key] = result.text
        for tool_call in (holder.get("tool_calls") or []) if chat else []:
            function = tool_call.get("function") if isinstance(tool_call, dict) else None
            if isinstance(function, dict):
                masked = _arguments(call, function.get("arguments"), blocked)
                if mask:
                    function["arguments"] = masked
        if blocked and mask:
            holder[key] = None
            holder.pop("tool_calls", None)
            choice["finish_reason"] = "content_filter"


def refusal(blocked: GuardResult, body: dict[str, Any]) -> APIError:
    """The 400 a blocked request gets (the server's error shape)."""
    param = next((k for k in ("messages", "prompt", "input") if k in body), None)
    return APIError(400, f"guard {blocked.policy!r}: {blocked.message}", param=param,
                    code="content_policy_violation")


def write_audit(store: Store, call: GuardCall) -> None:
    """A ``guard`` row per intervention and one ``guard_usage`` row for a call that had something to check."""
    base = {"endpoint": call.endpoint, "model": call.model, "account": call.account, "team": call.team}
    for result in call.results:
        if result.intervened:
            store.audit("guard", session=call.conversation, data={**base, **result.audit_data()})
    if not call.results:  # nothing to check (``/v1/models``): no cost to record
        return
    store.audit("guard_usage", session=call.conversation, data={
        **base, "policy": call.guard.name, "checks": len(call.results), "blocked": call.blocked,
        "characters": sum(r.characters for r in call.results), "seconds": round(call.seconds, 6)})


async def _timed(call: GuardCall, fn: Any, *args: Any, **kwargs: Any) -> Any:
    start = time.perf_counter()
    try:
        return await asyncio.to_thread(fn, call, *args, **kwargs)
    finally:
        call.seconds += time.perf_counter() - start


async def _close(call: GuardCall, store: Store | None) -> None:
    if call.forget:
        call.guard.forget(call.conversation)
    if store is not None:
        await asyncio.to_thread(write_audit, store, call)


# -- a server without keys ----------------------------------------------------------------------------

@dataclass
class GuardAdmission:
    """What :class:`GuardHooks` hands back: the inner hooks' admission and the call's checks."""

    inner: Any
    call: GuardCall


class GuardHooks(ServerHooks):
    """One guard on every call of a server (see the module docstring); ``inner`` hooks admit first.

    ``audit`` is the trace store the rows go to (``None``: none); ``account_of(request, inner_admission)``
    names who a call is charged to (default: nobody).
    """

    def __init__(self, guard: Guard, *, inner: Gateway | None = None, audit: Store | None = None,
                 account_of: Any = None):
        self.guard, self.inner, self.audit = guard, inner or ServerHooks(), audit
        self.account_of = account_of or (lambda request, admission: None)

    def usage(self, account: str | None = None) -> GuardUsage:
        """What the checks have cost so far, in total or for one account."""
        return self.guard.usage(account)

    async def admit(self, request: Request, model: str | None, body: dict[str, Any] | None) -> GuardAdmission:
        inner = await self.inner.admit(request, model, body)
        call = GuardCall.of(self.guard, request, model, self.account_of(request, inner))
        if body is not None:
            blocked = await _timed(call, check_request, body)
            if blocked is not None:
                await _close(call, self.audit)
                raise refusal(blocked, body)
        return GuardAdmission(inner, call)

    async def respond(self, admission: GuardAdmission, response: dict[str, Any]) -> dict[str, Any]:
        """A non-streamed answer, checked and masked before it is sent."""
        admission.call.responded = True
        await _timed(admission.call, check_answer, response, mask=True)
        return response

    async def finish(self, admission: GuardAdmission, usage: CallUsage | None, latency: float, status: int,
                     request: Request, response: dict[str, Any] | None) -> None:
        call = admission.call
        if not call.responded and status == 200 and isinstance(response, dict):  # a stream: already sent
            await _timed(call, check_answer, response, mask=False)
        await _close(call, self.audit)
        await self.inner.finish(admission.inner, usage, latency, status, request, response)


# -- the gateway --------------------------------------------------------------------------------------

_request: contextvars.ContextVar[Request | None] = contextvars.ContextVar("guarded_request", default=None)


class GuardGateway(GatewayHooks):
    """The gateway with a guard in its ``check_request`` seam: the key's policy (``keys create --guard``),
    else ``guard`` (the server's ``--guard``), else none. Checks count in the call's usage row; audit rows
    go to the gateway's trace store. Other arguments: :class:`~agentladder.serve.gateway.GatewayHooks`.
    """

    def __init__(self, *args: Any, guard: Guard | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.guard = guard
        self._guards: dict[str, Guard] = {}
        self._lock = threading.Lock()

    def guard_for(self, policy: str | None) -> Guard | None:
        """The guard of a key's policy path (loaded and warmed once), or the server's."""
        if not policy:
            return self.guard
        with self._lock:
            if policy not in self._guards:
                self._guards[policy] = Guard.from_yaml(policy).warm()
            return self._guards[policy]

    async def admit(self, request: Request, model: str | None, body: dict[str, Any] | None) -> Admission:
        token = _request.set(request)
        try:
            return await super().admit(request, model, body)
        finally:
            _request.reset(token)

    async def check_request(self, admission: Admission, body: dict[str, Any] | None) -> None:
        request = _request.get()
        if not admission.key.guard and self.guard is None:
            return
        try:
            guard = await asyncio.to_thread(self.guard_for, admission.key.guard)
        except (AgentladderError, OSError) as err:  # a key whose policy cannot be read is refused, not let through
            raise APIError(503, f"The guard policy of this key cannot be loaded: {err}",
                           code="guard_unavailable") from None
        if guard is None or request is None:
            return
        call = GuardCall.of(guard, request, admission.model, admission.key.id, admission.key.team)
        admission.guard = call
        if body is None:
            return
        blocked = await _timed(call, check_request, body)
        admission.guard_checks, admission.guard_blocked = len(call.results), call.blocked
        if blocked is not None:
            await _close(call, self.store)
            raise refusal(blocked, body)

    async def respond(self, admission: Admission, response: dict[str, Any]) -> dict[str, Any]:
        call: GuardCall | None = admission.guard
        if call is not None:
            call.responded = True
            await _timed(call, check_answer, response, mask=True)
        return response

    async def finish(self, admission: Admission, usage: CallUsage | None, latency: float, status: int,
                     request: Request, response: dict[str, Any] | None) -> None:
        call: GuardCall | None = admission.guard
        if call is not None:
            if not call.responded and status == 200 and isinstance(response, dict):
                await _timed(call, check_answer, response, mask=False)
            admission.guard_checks, admission.guard_blocked = len(call.results), call.blocked
            await _close(call, self.store)
        await super().finish(admission, usage, latency, status, request, response)


def load_guard(policy: str | Path, *, progress: Any = None) -> Guard:
    """The server's guard from a policy file, every detector built before the first call."""
    return Guard.from_yaml(policy, progress=progress).warm()


__all__ = ["CONVERSATION_HEADER", "GuardAdmission", "GuardCall", "GuardGateway", "GuardHooks", "check_answer",
           "check_request", "load_guard", "refusal", "write_audit"]
