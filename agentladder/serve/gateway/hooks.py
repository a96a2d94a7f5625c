"""The gateway: API keys, limits, budgets, usage rows, recording and spans, as the server's hooks.

:class:`GatewayHooks` plugs into the server's seam (:mod:`agentladder.serve.hooks`) and
into the proxy in front of vLLM (:mod:`agentladder.serve.gateway.proxy`) alike. For
every ``/v1`` request, ``admit``:

1. reads the key from ``Authorization: Bearer KEY``: none is a 401 ``missing_api_key``;
   an unknown one a 401 ``invalid_api_key``; a revoked one a 401 ``revoked_api_key``;
2. checks the model: one the key may not call is a 403 ``model_not_allowed``; the adapter
   routes need an ``admin`` key (403 ``admin_required``);
3. checks the budget: a spent ``token_budget`` is a 429 ``insufficient_quota``;
4. checks the rates over the last 60 seconds (the key's usage rows, shared by every process
   on the store, plus this process's requests in flight): ``rpm`` or ``tpm`` reached is a
   429 ``rate_limit_exceeded`` with ``Retry-After`` (seconds until enough of the window's
   rows leave it);
5. runs :meth:`GatewayHooks.check_request`, the guard seam (a no-op here).

``finish`` writes the usage row (and charges the key's budget) in one transaction
before the answer is sent, records a ``record`` key's chat call as trajectories, and
ends the call's span. A refusal at steps 2 to 5 also leaves a usage row (with its
status); a 401 does not (no key, no one to charge).

Limits are checked when a request arrives: a budget can be overshot by the calls in
flight when it runs out, and ``tpm`` counts the tokens of calls that finished in the
window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from starlette.requests import Request

from agentladder.agents.store import Store
from agentladder.agents.tracing import make_tracer_provider
from agentladder.serve.errors import APIError
from agentladder.serve.gateway import keys as keyring
from agentladder.serve.gateway.db import GatewayDB
from agentladder.serve.gateway.recording import call_span, record_call
from agentladder.serve.gateway.usage import UsageRow, Window, window, write_usage
from agentladder.serve.hooks import CallUsage, ServerHooks

log = logging.getLogger("agentladder.serve")
ADMIN_PATHS = ("/v1/load_lora_adapter", "/v1/unload_lora_adapter")
WINDOW_S = 60.0


@dataclass
class Admission:
    """An admitted request, handed back to ``finish`` (and to a guard)."""

    key: keyring.KeyRecord
    endpoint: str
    model: str | None
    body: dict[str, Any] | None
    ts: float
    start_ns: int
    guard_checks: int = 0
    """How many guard checks ran on this call (a guard adds to it; it lands in the usage row)."""
    guard_blocked: int = 0
    guard: Any = None
    """What a guard keeps for this call between its checks (:class:`agentladder.serve.guard.GuardCall`)."""


def bearer(request: Request) -> str | None:
    """The key in ``Authorization: Bearer KEY`` (or ``api-key: KEY``, as Azure clients send it)."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("api-key") or None


def retry_after(win: Window, *, rpm: int | None, tpm: int | None, inflight: int, now: float) -> float | None:
    """Seconds until the key is under both limits again (None: it is under them now)."""
    waits = []
    if rpm is not None and win.requests + inflight >= rpm:
        k = win.requests + inflight - rpm  # this many rows must leave, then one more
        waits.append(win.first_ts[k] + WINDOW_S - now if k < len(win.first_ts) else 1.0)
    if tpm is not None and win.tokens >= tpm:
        left = win.tokens
        for ts, tokens in win.token_ts:
            left -= tokens
            if left < tpm:
                waits.append(ts + WINDOW_S - now)
                break
    return max(waits) if waits else None


def storable(text: str | None) -> str | None:
    """Text any database stores: no NUL (PostgreSQL refuses it) and no lone surrogate (UTF-8 has none)."""
    if text is None:
        return None
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


class GatewayHooks(ServerHooks):
    """Keys, limits, usage, recording and spans around every ``/v1`` call (see the module docstring).

    ``db`` holds keys and usage; ``store`` (the agents runtime's store) takes recorded calls
    and spans; ``provider_name`` is the spans' ``gen_ai.provider.name`` (``agentladder``, or
    ``vllm`` behind the proxy).
    """

    def __init__(self, db: GatewayDB, *, store: Store | None = None, tracer_provider: TracerProvider | None = None,
                 otlp_endpoint: str | None = None, provider_name: str = "agentladder"):
        self.db, self.store, self.provider_name = db, store, provider_name
        if tracer_provider is None and store is not None:
            tracer_provider = make_tracer_provider(store, otlp_endpoint=otlp_endpoint,
                                                   service_name="agentladder-serve")
        self.tracer_provider = tracer_provider
        self.tracer = tracer_provider.get_tracer("agentladder.serve") if tracer_provider else None
        self.inflight: dict[str, int] = {}

    # -- admission -------------------------------------------------------------------------------
    async def admit(self, request: Request, model: str | None, body: dict[str, Any] | None) -> Admission:
        secret = bearer(request)
        if secret is None:
            raise APIError(401, "You didn't provide an API key: send it as `Authorization: Bearer KEY`.",
                           code="missing_api_key")
        key = await asyncio.to_thread(keyring.lookup, self.db, secret)
        if key is None:
            raise APIError(401, f"Incorrect API key provided: {secret[:6]}…", code="invalid_api_key")
        if key.revoked is not None:
            raise APIError(401, f"The API key {key.prefix}… was revoked.", code="revoked_api_key")
        admission = Admission(key, request.url.path, storable(model), body, time.time(), time.time_ns())
        self.inflight[key.id] = self.inflight.get(key.id, 0) + 1
        try:
            await self._check_key(admission)
            await self.check_request(admission, body)
        except APIError as err:
            self.inflight[key.id] -= 1
            await asyncio.to_thread(self._write, admission, None, time.time() - admission.ts, err.status, err.body())
            raise
        return admission

    async def _check_key(self, admission: Admission) -> None:
        key, model = admission.key, admission.model
        if admission.endpoint in ADMIN_PATHS and not key.admin:
            raise APIError(403, "Loading and unloading adapters needs an admin key (keys create --admin).",
                           code="admin_required")
        if model is not None and admission.endpoint not in ADMIN_PATHS and not key.allows(model):
            raise APIError(403, f"This key may not call `{model}` (it may call: {', '.join(key.models)}).",
                           param="model", code="model_not_allowed")
        if key.budget_left == 0:
            raise APIError(429, f"This key's token budget ({key.token_budget}) is spent.",
                           type="insufficient_quota", code="insufficient_quota")
        if key.rpm is None and key.tpm is None:
            return
        now = time.time()
        win = await asyncio.to_thread(window, self.db, key.id, now - WINDOW_S)
        wait = retry_after(win, rpm=key.rpm, tpm=key.tpm, inflight=self.inflight[key.id] - 1, now=now)
        if wait is not None:
            limits = ", ".join(f"{n} {v}" for n, v in (("rpm", key.rpm), ("tpm", key.tpm)) if v is not None)
            seconds = max(1, math.ceil(wait))
            raise APIError(429, f"Rate limit reached for this key ({limits}); retry in {seconds} s.",
                           code="rate_limit_exceeded", headers={"Retry-After": str(seconds)})

    async def check_request(self, admission: Admission, body: dict[str, Any] | None) -> None:
        """The guard seam: runs after the key's checks, before the call is served.

        A guard overrides it: it reads ``admission.key.guard`` (the key's policy path) and the
        body, adds to ``admission.guard_checks`` for each check it runs, and raises
        :class:`~agentladder.serve.errors.APIError` (after setting ``admission.guard_blocked``)
        to block the call; the refusal's usage row carries both counts. Here: nothing.
        """
        return None

    # -- the outcome -----------------------------------------------------------------------------
    async def finish(self, admission: Admission, usage: CallUsage | None, latency: float, status: int,
                     request: Request, response: dict[str, Any] | None) -> None:
        self.inflight[admission.key.id] -= 1
        await asyncio.to_thread(self._write, admission, usage, latency, status, response)

    def _write(self, admission: Admission, usage: CallUsage | None, latency: float, status: int,
               response: dict[str, Any] | None) -> None:
        """The usage row (first: it is what must not be lost), the recording, the span."""
        key = admission.key
        request_id = response.get("id") if isinstance(response, dict) and isinstance(response.get("id"), str) else None
        row = UsageRow(ts=admission.ts, endpoint=admission.endpoint, status=status, latency=latency, key_id=key.id,
                       team=key.team, model=storable(admission.model), prompt_tokens=usage.prompt_tokens if usage else 0,
                       completion_tokens=usage.completion_tokens if usage else 0, request_id=request_id,
                       guard_checks=admission.guard_checks, guard_blocked=admission.guard_blocked)
        write_usage(self.db, row)
        try:
            self._trace(admission, row, usage is not None, latency, status, response)
        except Exception:  # the usage row is in; a trace that cannot be written is logged, not fatal
            log.exception("the call %s was not recorded or traced", request_id)

    def _trace(self, admission: Admission, row: UsageRow, has_usage: bool, latency: float, status: int,
               response: dict[str, Any] | None) -> None:
        key = admission.key
        trajectories: list[str] = []
        if (key.record and self.store is not None and status == 200 and admission.body is not None
                and admission.endpoint == "/v1/chat/completions" and response and "choices" in response):
            trajectories = record_call(self.store, admission.body, response, model=admission.model or "",
                                       team=key.team, key_id=key.id)
        if self.tracer is not None:
            call_span(self.tracer, endpoint=admission.endpoint, provider=self.provider_name, model=admission.model,
                      body=admission.body, response=response, status=status,
                      usage=(row.prompt_tokens, row.completion_tokens) if has_usage else None,
                      start_ns=admission.start_ns, end_ns=admission.start_ns + int(latency * 1e9), team=key.team,
                      key_id=key.id, trajectory=trajectories[0] if trajectories else None)

    def close(self) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


__all__ = ["ADMIN_PATHS", "Admission", "GatewayHooks", "bearer", "retry_after"]
