"""The seam for a gateway in front of the models: a hook object called for every API request.

``create_app(..., hooks=...)`` takes any object with the two async methods of
:class:`Gateway`; the default, :class:`ServerHooks`, admits everything and records
nothing. For every request to a ``/v1`` route:

1. ``admission = await hooks.admit(request, model, body)`` runs first, before the body
   is validated or anything is generated. ``model`` is the body's ``model`` when it is
   a string (else None, as for ``/v1/models``); ``body`` is the parsed JSON object, or
   None when there is none or it is not JSON. To refuse, raise
   :class:`~agentladder.serve.errors.APIError` (401 for a missing or wrong key, 403 for
   a model the key may not call, 429 with a ``Retry-After`` header for a rate limit or
   a spent budget): the client gets it in the OpenAI error shape and ``finish`` is not
   called. Whatever ``admit`` returns is handed back to ``finish``.
2. ``await hooks.finish(admission, usage, latency, status, request, response)`` runs
   once the answer is complete: after the body of a non-streamed answer is ready, after
   the last event of a stream (``response`` is then the same object a non-streamed
   request would have got, assembled from the stream), or after an error
   (``response`` is the error body). ``usage`` is None when nothing was generated.
   A client that goes away mid-stream gives status 499.

``finish`` runs on the event loop: a hook that writes to a database should hand the
write to a thread (``asyncio.to_thread``) or its own writer task.

Optionally, ``response = await hooks.respond(admission, response)`` runs between the two for
an answer that is not streamed, before it is sent: a guard masks or withholds it there
(:mod:`agentladder.serve.guard`). Hooks without the method are not asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from starlette.requests import Request

CLIENT_CLOSED = 499
"""The status ``finish`` gets when the client disconnected before the answer was complete."""


@dataclass
class CallUsage:
    """Tokens one request used."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_openai(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens}


@runtime_checkable
class Gateway(Protocol):
    """What the server calls around every ``/v1`` request (see the module docstring)."""

    async def admit(self, request: Request, model: str | None, body: dict[str, Any] | None) -> Any: ...

    async def finish(self, admission: Any, usage: CallUsage | None, latency: float, status: int,
                     request: Request, response: dict[str, Any] | None) -> None: ...


class ServerHooks:
    """The default hooks: admit every request, record nothing. Subclass it to override one method."""

    async def admit(self, request: Request, model: str | None, body: dict[str, Any] | None) -> Any:
        return None

    async def finish(self, admission: Any, usage: CallUsage | None, latency: float, status: int,
                     request: Request, response: dict[str, Any] | None) -> None:
        return None


__all__ = ["CLIENT_CLOSED", "CallUsage", "Gateway", "ServerHooks"]
