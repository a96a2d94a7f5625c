"""Errors in the OpenAI shape: ``{"error": {"message", "type", "param", "code"}}`` with the right status.

Every failure a client can cause answers with this body, so any OpenAI client raises
its typed error (``BadRequestError`` for 400, ``NotFoundError`` for 404, ...) with our
message, and the server goes on serving:

- a body that is not JSON, or not an object: 400 ``invalid_request_error``, code ``invalid_json``;
- a missing or wrong-typed field: 400, ``param`` naming the field (``messages[1].role``),
  code ``invalid_type`` or ``missing_required_parameter``;
- an unknown model: 404, code ``model_not_found``;
- a prompt longer than the context, or a ``max_tokens`` it has no room for: 400, code
  ``context_length_exceeded``;
- an unknown path: 404; a wrong method: 405;
- anything unexpected inside the server: 500 ``server_error`` (the bug is logged, the
  server keeps serving).

vLLM answers with the same envelope; its ``type`` is an exception name
(``BadRequestError``) and its ``code`` the status number. We follow OpenAI's own values
(``invalid_request_error``, string codes), which every client reads the same way.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentladder.errors import field_path

log = logging.getLogger("agentladder.serve")

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
         413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
         500: "server_error", 503: "service_unavailable"}


class APIError(Exception):
    """A request the server answers with an OpenAI-shaped error (raise it from a route or a hook)."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type or TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """The OpenAI error envelope."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def not_found(model: str) -> APIError:
    return APIError(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def from_validation(err: ValidationError | RequestValidationError) -> APIError:
    """The first problem of a request body that does not validate, as a 400 naming the field."""
    first = err.errors()[0]
    loc = [p for p in first.get("loc", ()) if p != "body" and not (isinstance(p, str) and "[" in p)]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return APIError(400, f"The body is not valid JSON: {first.get('msg')}", code="invalid_json")
    field = field_path(loc) or None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    code = "missing_required_parameter" if kind == "missing" else (
        "invalid_type" if kind.endswith("_type") or kind.endswith("_parsing") else "invalid_value")
    return APIError(400, f"{field}: {message}" if field else message, param=field, code=code)


async def read_json(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object, or a 400."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise APIError(400, f"The body is not valid JSON: {err}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, f"The body must be a JSON object, not {type(body).__name__}", code="invalid_json")
    return body


def install(app: FastAPI) -> None:
    """Answer every error the app raises in the OpenAI shape."""

    @app.exception_handler(APIError)
    async def _api(_: Request, err: APIError) -> JSONResponse:
        return err.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return from_validation(err).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        message = {404: "No such route.", 405: "Method not allowed."}.get(err.status_code, str(err.detail))
        return APIError(err.status_code, message, code="not_found" if err.status_code == 404 else None,
                        headers=getattr(err, "headers", None)).response()

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error serving %s", request.url.path)
        return APIError(500, f"Internal server error: {type(err).__name__}: {err}").response()


__all__ = ["APIError", "bad_request", "error_body", "from_validation", "install", "not_found", "read_json"]
