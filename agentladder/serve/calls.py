"""One API call through the server: the hooks around it, its errors, and its generations on the scheduler.

:func:`serve_call` wraps every ``/v1`` route: it reads the JSON body, asks the hooks
to admit the call, runs the route, turns any error into the OpenAI shape, and hands
the outcome (status, usage, latency, response) to the metrics and the hooks exactly
once (:meth:`Call.finish`); a streamed answer calls it when its stream ends.

:class:`Run` is a call's generations on the scheduler: one
:class:`~agentladder.serve.scheduler.Generation` per prompt, their token events
brought onto the event loop through an ``asyncio.Queue``, choice ``i`` of prompt
``p`` numbered ``p * n + i`` (OpenAI's numbering). Cancelling a run (the client
went away, or the route failed) takes its sequences out of the batch at the next step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from agentladder.serve.errors import APIError, from_validation, read_json
from agentladder.serve.hooks import CLIENT_CLOSED, CallUsage
from agentladder.serve.sampling import Sampling
from agentladder.serve.scheduler import Event, Failure, Generation, TokenEvent
from agentladder.serve.structured import Grammar

if TYPE_CHECKING:
    from agentladder.serve.app import ServerState

log = logging.getLogger("agentladder.serve")
B = TypeVar("B", bound=BaseModel)


@dataclass
class Call:
    """One admitted API call (see the module docstring)."""

    state: ServerState
    request: Request
    endpoint: str
    model: str | None
    admission: Any
    start: float
    usage: CallUsage | None = None
    finished: bool = False

    async def finish(self, status: int, response: dict[str, Any] | None) -> None:
        """Report the outcome to the metrics and the hooks (once; later calls do nothing)."""
        if self.finished:
            return
        self.finished = True
        latency = time.perf_counter() - self.start
        u = self.usage or CallUsage()
        self.state.metrics.observe(self.endpoint, self.model, status, latency, u.prompt_tokens, u.completion_tokens)
        try:
            await self.state.hooks.finish(self.admission, self.usage, latency, status, self.request, response)
        except Exception:
            log.exception("the finish hook failed")

    def finish_later(self, status: int, response: dict[str, Any] | None) -> None:
        """:meth:`finish` from a task that is being cancelled (a client that went away)."""
        if not self.finished:
            asyncio.get_running_loop().create_task(self.finish(status, response))


def parse(model: type[B], body: dict[str, Any]) -> B:
    """``body`` validated as ``model`` (a 400 naming the field when it is not)."""
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise from_validation(err) from None


async def serve_call(request: Request, endpoint: str,
                     work: Callable[[Call, dict[str, Any] | None], Awaitable[Any]]) -> Response:
    """Run ``work`` as one API call (see the module docstring); a dict it returns is sent as JSON."""
    state: ServerState = request.app.state.server
    start = time.perf_counter()
    body: dict[str, Any] | None = None
    unreadable: APIError | None = None
    if request.method == "POST":
        try:
            body = await read_json(request)
        except APIError as err:
            unreadable = err
    model = body.get("model") if body is not None and isinstance(body.get("model"), str) else None
    try:
        admission = await state.hooks.admit(request, model, body)
    except APIError as err:
        state.metrics.observe(endpoint, model, err.status, time.perf_counter() - start)
        return err.response()
    call = Call(state, request, endpoint, model, admission, start)
    try:
        if unreadable is not None:
            raise unreadable
        result = await work(call, body)
        respond = getattr(state.hooks, "respond", None)  # optional: a guard's check of the answer
        if respond is not None and isinstance(result, dict):
            result = await respond(admission, result)
    except APIError as err:
        await call.finish(err.status, err.body())
        return err.response()
    except asyncio.CancelledError:
        call.finish_later(CLIENT_CLOSED, None)
        raise
    except Exception as err:
        log.exception("unexpected error serving %s", request.url.path)
        failure = APIError(500, f"Internal server error: {type(err).__name__}: {err}")
        await call.finish(500, failure.body())
        return failure.response()
    if isinstance(result, Response):
        if not getattr(result, "streams", False):
            await call.finish(result.status_code, None)
        return result
    await call.finish(200, result)
    return JSONResponse(result)


class Run:
    """A call's generations on the scheduler (see the module docstring)."""

    def __init__(self, state: ServerState, prompts: list[list[int]], sampling: Sampling, *, n: int = 1,
                 adapter: str | None = None, grammar: Grammar | None = None):
        loop = asyncio.get_running_loop()
        self.state, self.n = state, n
        self.queue: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()
        self.left = len(prompts) * n
        self.first_token: float | None = None

        def listener(p: int) -> Callable[[Event], None]:
            return lambda event: loop.call_soon_threadsafe(self.queue.put_nowait, (p, event))

        self.gens = [Generation(prompt, sampling, listener(p), n=n, adapter=adapter,
                                matchers=[state.structured.matcher(grammar) for _ in range(n)] if grammar else None)
                     for p, prompt in enumerate(prompts)]
        self.started = time.perf_counter()
        for g in self.gens:
            state.scheduler.submit(g)

    def cancel(self) -> None:
        for g in self.gens:
            g.cancel()

    async def events(self) -> AsyncIterator[tuple[int, TokenEvent]]:
        """``(choice index, event)`` until every sequence has finished; a failure raises a 500."""
        while self.left:
            p, event = await self.queue.get()
            if isinstance(event, Failure):
                self.cancel()
                raise APIError(event.status, event.message)
            if self.first_token is None:
                self.first_token = time.perf_counter()
                self.state.metrics.ttft.observe(self.first_token - self.started)
            if event.finish is not None:
                self.left -= 1
            yield p * self.n + event.index, event


__all__ = ["Call", "Run", "parse", "serve_call"]
