"""The other routes: ``/v1/models``, the adapter routes, ``/v1/embeddings``, ``/classify``, ``/health``,
``/metrics``.

``/classify`` (and ``/v1/classify``) answers with a served classifier in vLLM's shape
(:mod:`~agentladder.serve.classify`).

``/v1/load_lora_adapter`` and ``/v1/unload_lora_adapter`` take vLLM's bodies
(``{"lora_name", "lora_path", "load_inplace"}`` and ``{"lora_name"}``) and answer as
vLLM does: 200 with the text ``Success: LoRA adapter 'NAME' added successfully.``
(``removed``), or an OpenAI-shaped error: 400 for a name already loaded (without
``load_inplace``) or an adapter that does not load, 404 for a folder or a name that
does not exist. vLLM keeps them behind ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``; here they
are always on, and a gateway's ``admit`` hook decides who may call them. An unload
stops routing requests to the name at once and frees the weights once no running
request uses them.

``/health`` answers 200 with the batch's state while the worker runs (503 once it
has stopped); ``/metrics`` is Prometheus' text format.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from agentladder.errors import ConfigError
from agentladder.serve.calls import Call, parse, serve_call
from agentladder.serve.classify import ClassificationRequest
from agentladder.serve.errors import APIError, bad_request, not_found
from agentladder.serve.hooks import CallUsage
from agentladder.serve.metrics import CONTENT_TYPE
from agentladder.serve.schemas import (
    EmbeddingRequest,
    LoadLoRAAdapterRequest,
    UnloadLoRAAdapterRequest,
)

if TYPE_CHECKING:
    from agentladder.serve.app import ServerState

router = APIRouter()


def cards(state: ServerState) -> list[dict[str, Any]]:
    out = state.served.cards()
    if state.embedder is not None:
        out.append(state.embedder.card())
    out.extend(c.card() for c in state.classifiers.values())
    return out


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    async def work(call: Call, _: Any) -> dict[str, Any]:
        return {"object": "list", "data": cards(call.state)}

    return await serve_call(request, "models", work)


@router.get("/v1/models/{model:path}")
async def retrieve_model(request: Request, model: str) -> Response:
    async def work(call: Call, _: Any) -> dict[str, Any]:
        for card in cards(call.state):
            if card["id"] == model:
                return card
        raise not_found(model)

    return await serve_call(request, "models", work)


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    async def work(call: Call, raw: dict[str, Any] | None) -> dict[str, Any]:
        body = parse(EmbeddingRequest, raw or {})
        embedder = call.state.embedder
        if embedder is None or body.model != embedder.name:
            if body.model in call.state.classifiers:
                raise bad_request(f"`{body.model}` is a classifier; call /classify", "model", "wrong_model_type")
            if call.state.served.adapter_for(body.model) is not False:
                raise bad_request(f"`{body.model}` generates text; the embedding model here is "
                                  f"{embedder.name if embedder else 'not loaded (start with --embeddings)'}",
                                  "model", "wrong_model_type")
            raise not_found(body.model)
        answer = await embedder.answer(body)
        call.usage = CallUsage(answer["usage"]["prompt_tokens"], 0)
        return answer

    return await serve_call(request, "embeddings", work)


@router.post("/classify")
@router.post("/v1/classify")
async def classify(request: Request) -> Response:
    async def work(call: Call, raw: dict[str, Any] | None) -> dict[str, Any]:
        body = parse(ClassificationRequest, raw or {})
        found = call.state.classifiers.get(body.model)
        if found is None:
            if body.model in {c["id"] for c in cards(call.state)}:
                raise bad_request(f"`{body.model}` is not a classifier; the classifiers here are "
                                  f"{', '.join(call.state.classifiers) or 'none (start with --classifier)'}",
                                  "model", "wrong_model_type")
            raise not_found(body.model)
        answer = await found.answer(body)
        call.usage = CallUsage(answer["usage"]["prompt_tokens"], 0)
        return answer

    return await serve_call(request, "classify", work)


@router.post("/v1/load_lora_adapter")
async def load_lora_adapter(request: Request) -> Response:
    async def work(call: Call, raw: dict[str, Any] | None) -> Response:
        body = parse(LoadLoRAAdapterRequest, raw or {})
        state = call.state
        if not body.lora_name or not body.lora_path:
            raise bad_request("Both 'lora_name' and 'lora_path' must be provided.")
        if body.lora_name in state.served.specialists and not body.load_inplace:
            raise bad_request(f"The lora adapter '{body.lora_name}' has already been loaded. If you want to load "
                              "the adapter in place, set 'load_inplace' to True.", "lora_name")
        if state.embedder is not None and body.lora_name == state.embedder.name:
            raise bad_request(f"'{body.lora_name}' is the embedding model's name", "lora_name")
        if body.lora_name in state.classifiers:
            raise bad_request(f"'{body.lora_name}' is a classifier's name", "lora_name")
        if not Path(body.lora_path).expanduser().is_dir():
            raise APIError(404, f"Loading lora {body.lora_name} failed: No adapter found for {body.lora_path}",
                           param="lora_path", code="not_found")
        future = state.scheduler.call(lambda: state.served.attach(body.lora_name, body.lora_path,
                                                                  replace=body.load_inplace))
        try:
            await asyncio.wrap_future(future)
        except ConfigError as err:
            raise bad_request(str(err), "lora_path") from None
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' added successfully.")

    return await serve_call(request, "load_lora_adapter", work)


@router.post("/v1/unload_lora_adapter")
async def unload_lora_adapter(request: Request) -> Response:
    async def work(call: Call, raw: dict[str, Any] | None) -> Response:
        body = parse(UnloadLoRAAdapterRequest, raw or {})
        state = call.state
        if not body.lora_name:
            raise bad_request("'lora_name' needs to be provided to unload a LoRA adapter.")
        try:
            gone = state.served.forget(body.lora_name)
        except ConfigError:
            raise APIError(404, f"The lora adapter '{body.lora_name}' cannot be found.", param="lora_name",
                           code="not_found") from None
        future = state.scheduler.call(lambda: state.served.delete(gone),
                                      ready=lambda: not state.scheduler.uses_adapter(gone.adapter))
        await asyncio.wrap_future(future)
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' removed successfully.")

    return await serve_call(request, "unload_lora_adapter", work)


@router.get("/health")
async def health(request: Request) -> Response:
    state: ServerState = request.app.state.server
    alive = state.scheduler.alive
    return JSONResponse({"status": "ok" if alive else "stopped", "model": state.served.name,
                         "running": state.scheduler.running, "waiting": state.scheduler.waiting},
                        status_code=200 if alive else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    state: ServerState = request.app.state.server
    return Response(state.metrics.text(), media_type=CONTENT_TYPE)


__all__ = ["router"]
