"""``/v1/chat/completions`` and ``/v1/completions``: validate, plan, generate on the scheduler, answer.

Both answer whole (JSON) or streamed as server-sent events: ``data: {chunk}`` lines,
then ``data: [DONE]``. A streamed chat answer opens each choice with its role, sends
text as it is decoded (:class:`~agentladder.serve.outputs.ChoiceText`), tool calls
when the answer is complete, and the ``finish_reason`` in the choice's last chunk;
``stream_options: {"include_usage": true}`` adds a last chunk with the usage. An error
after the stream has started is sent as an ``error`` event, as vLLM does. When a
client disconnects, its sequences leave the batch at the next step.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from agentladder.serve.calls import Call, Run, parse, serve_call
from agentladder.serve.chat import ChatPlan, check_budget, plan_chat, read_answer
from agentladder.serve.errors import APIError, bad_request, not_found
from agentladder.serve.hooks import CLIENT_CLOSED, CallUsage
from agentladder.serve.outputs import ChoiceText
from agentladder.serve.sampling import Sampling
from agentladder.serve.schemas import ChatCompletionRequest, CompletionRequest, _Sampling

if TYPE_CHECKING:
    from agentladder.serve.app import ServerState

router = APIRouter()


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    return await serve_call(request, "chat", _chat)


@router.post("/v1/completions")
async def completions(request: Request) -> Response:
    return await serve_call(request, "completions", _completions)


# -- shared -----------------------------------------------------------------------------------------
def adapter_for(state: ServerState, model: str) -> str | None:
    """The peft adapter serving ``model`` (None: the base); 404 when nothing generates under that name."""
    found = state.served.adapter_for(model)
    if found is False:
        if state.embedder is not None and model == state.embedder.name:
            raise bad_request(f"`{model}` is an embedding model; call /v1/embeddings", "model", "wrong_model_type")
        if model in state.classifiers:
            raise bad_request(f"`{model}` is a classifier; call /classify or /v1/chat/completions", "model",
                              "wrong_model_type")
        raise not_found(model)
    return found  # type: ignore[return-value]


def sampling_for(state: ServerState, body: _Sampling, max_tokens: int, logprobs: int | None) -> Sampling:
    if body.n > state.scheduler.max_batch:
        raise bad_request(f"n must be at most {state.scheduler.max_batch} (the server's --max-batch)", "n")
    vocab = state.structured.vocab_size
    bias = {int(k): v for k, v in (body.logit_bias or {}).items()}
    if any(not 0 <= t < vocab for t in bias):
        raise bad_request(f"logit_bias token ids must be in [0, {vocab})", "logit_bias")
    return Sampling(max_tokens=max_tokens, temperature=1.0 if body.temperature is None else body.temperature,
                    top_p=1.0 if body.top_p is None else body.top_p, top_k=max(0, body.top_k or 0), seed=body.seed,
                    stop=tuple(body.stops), ignore_eos=body.ignore_eos, logprobs=logprobs, logit_bias=bias)


# Characters that ``str.splitlines`` (and so httpx's ``iter_lines`` and other clients) takes for line breaks but
# JSON leaves raw: escaped, so a generated NEL or line separator never splits an event's data line.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event: ``data: {json}`` and a blank line, its JSON on one line for any line splitter."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False).translate(_LINE_BREAKS)
    return f"data: {text}\n\n"


def streamed(stream: AsyncIterator[str]) -> StreamingResponse:
    response = StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.streams = True  # type: ignore[attr-defined]  # the stream reports its own outcome
    return response


async def collect(run: Run, choices: list[ChoiceText]) -> None:
    """Every event of ``run`` into its choice; the run is cancelled if this is (client gone)."""
    try:
        async for i, event in run.events():
            choices[i].add(event)
    finally:
        run.cancel()


def usage_of(prompts: list[list[int]], choices: list[ChoiceText]) -> CallUsage:
    return CallUsage(sum(len(p) for p in prompts), sum(len(c.tokens) for c in choices))


# -- chat ---------------------------------------------------------------------------------------------
async def _chat(call: Call, raw: dict[str, Any] | None) -> Any:
    state = call.state
    body = parse(ChatCompletionRequest, raw or {})
    classifier = state.classifiers.get(body.model)
    if classifier is not None:
        answer = await classifier.chat(body)
        call.usage = CallUsage(answer["usage"]["prompt_tokens"], 0)
        return streamed(_answered_stream(call, body, answer)) if body.stream else answer
    adapter = adapter_for(state, body.model)
    plan = await asyncio.to_thread(plan_chat, body, state.served.tokenizer, state.structured)
    max_tokens = check_budget(len(plan.prompt), body.token_budget, state.served.max_len, state.default_max_tokens,
                              "messages")
    sampling = sampling_for(state, body, max_tokens, (body.top_logprobs or 0) if body.logprobs else None)
    choices = [ChoiceText(state.served.tokenizer, body.stops, hold_calls=bool(plan.tools), calls_only=plan.calls_only)
               for _ in range(body.n)]
    run = Run(state, [plan.prompt], sampling, n=body.n, adapter=adapter, grammar=plan.grammar)
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        return streamed(_chat_stream(call, run, body, plan, choices, ident, created))
    await collect(run, choices)
    call.usage = usage_of([plan.prompt], choices)
    return chat_response(body, plan, choices, ident, created, call.usage)


def _chat_choice(c: ChoiceText, plan: ChatPlan, index: int, logprobs: bool) -> dict[str, Any]:
    content, calls = read_answer(c.text, plan)
    message: dict[str, Any] = {"role": "assistant", "content": content if not calls or content else None}
    if calls:
        message["tool_calls"] = calls
    return {"index": index, "message": message, "logprobs": c.chat_logprobs() if logprobs else None,
            "finish_reason": "tool_calls" if calls else c.finish}


def chat_response(body: ChatCompletionRequest, plan: ChatPlan, choices: list[ChoiceText], ident: str,
                  created: int, usage: CallUsage) -> dict[str, Any]:
    return {"id": ident, "object": "chat.completion", "created": created, "model": body.model,
            "choices": [_chat_choice(c, plan, i, body.logprobs) for i, c in enumerate(choices)],
            "usage": usage.to_openai(), "system_fingerprint": None}


async def _chat_stream(call: Call, run: Run, body: ChatCompletionRequest, plan: ChatPlan,
                       choices: list[ChoiceText], ident: str, created: int) -> AsyncIterator[str]:
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> str:
        return sse({"id": ident, "object": "chat.completion.chunk", "created": created, "model": body.model,
                    "system_fingerprint": None,
                    "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
                    **({"usage": None} if include_usage else {})})

    status, final, sent_lp = 200, None, [0] * len(choices)
    try:
        for i in range(len(choices)):
            yield chunk(i, {"role": "assistant", "content": ""})
        async for i, event in run.events():
            c = choices[i]
            c.add(event)
            lp = None
            if body.logprobs:
                lp, sent_lp[i] = c.chat_logprobs(sent_lp[i]), len(c.events)
            if c.finish is None:
                piece = c.delta()
                if piece or lp:
                    yield chunk(i, {"content": piece}, logprobs=lp)
                continue
            content, calls = read_answer(c.text, plan)
            if calls:
                delta: dict[str, Any] = {"tool_calls": [dict(call_, index=k) for k, call_ in enumerate(calls)]}
            else:
                delta = {"content": c.delta()}
            yield chunk(i, delta, "tool_calls" if calls else c.finish, lp)
        call.usage = usage_of([plan.prompt], choices)
        if include_usage:
            yield sse({"id": ident, "object": "chat.completion.chunk", "created": created, "model": body.model,
                       "choices": [], "usage": call.usage.to_openai()})
        final = chat_response(body, plan, choices, ident, created, call.usage)
    except APIError as err:
        status, final = err.status, err.body()
        yield sse(final)
    except (asyncio.CancelledError, GeneratorExit):
        run.cancel()
        call.usage = usage_of([plan.prompt], choices)
        call.finish_later(CLIENT_CLOSED, None)
        raise
    finally:
        run.cancel()
    await call.finish(status, final)  # before [DONE]: a client that has read the stream finds the call recorded
    yield sse("[DONE]")


async def _answered_stream(call: Call, body: ChatCompletionRequest, answer: dict[str, Any]) -> AsyncIterator[str]:
    """A chat answer already made (a classifier's label) as a stream: role, content, finish, [DONE]."""
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    head = {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"], "model": body.model,
            "system_fingerprint": None}
    for choice in answer["choices"]:
        i, content = choice["index"], choice["message"]["content"]
        for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": content}, None),
                              ({}, choice["finish_reason"])):
            yield sse({**head, "choices": [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}],
                       **({"usage": None} if include_usage else {})})
    if include_usage:
        yield sse({**head, "choices": [], "usage": answer["usage"]})
    await call.finish(200, answer)
    yield sse("[DONE]")


# -- text completions -----------------------------------------------------------------------------------
def _prompt_ids(state: ServerState, body: CompletionRequest) -> list[list[int]]:
    tok, vocab = state.served.tokenizer, state.structured.vocab_size
    out = []
    for p in body.prompts:
        ids = tok(p)["input_ids"] if isinstance(p, str) else list(p)
        if not ids:
            raise bad_request("the prompt is empty", "prompt")
        if any(not 0 <= t < vocab for t in ids):
            raise bad_request(f"prompt token ids must be in [0, {vocab})", "prompt")
        out.append(ids)
    return out


async def _completions(call: Call, raw: dict[str, Any] | None) -> Any:
    state = call.state
    body = parse(CompletionRequest, raw or {})
    adapter = adapter_for(state, body.model)
    prompts = _prompt_ids(state, body)
    budgets = [check_budget(len(p), body.max_tokens, state.served.max_len, state.default_max_tokens, "prompt")
               for p in prompts]
    sampling = sampling_for(state, body, min(budgets), body.logprobs)
    if len(prompts) * body.n > state.scheduler.max_batch:
        raise bad_request(f"prompts times n must be at most {state.scheduler.max_batch}", "prompt")
    tok = state.served.tokenizer
    choices = [ChoiceText(tok, body.stops) for _ in range(len(prompts) * body.n)]
    echoes = [tok.decode(p) if body.echo else "" for p in prompts]
    run = Run(state, prompts, sampling, n=body.n, adapter=adapter)
    ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        return streamed(_completion_stream(call, run, body, prompts, choices, echoes, ident, created))
    await collect(run, choices)
    call.usage = usage_of(prompts, choices)
    return completion_response(body, choices, echoes, ident, created, call.usage)


def completion_response(body: CompletionRequest, choices: list[ChoiceText], echoes: list[str], ident: str,
                        created: int, usage: CallUsage) -> dict[str, Any]:
    out = []
    for i, c in enumerate(choices):
        echo = echoes[i // body.n]
        lp = c.completion_logprobs(len(echo)) if body.logprobs is not None else None
        out.append({"index": i, "text": echo + c.text, "logprobs": lp, "finish_reason": c.finish})
    return {"id": ident, "object": "text_completion", "created": created, "model": body.model, "choices": out,
            "usage": usage.to_openai(), "system_fingerprint": None}


async def _completion_stream(call: Call, run: Run, body: CompletionRequest, prompts: list[list[int]],
                             choices: list[ChoiceText], echoes: list[str], ident: str,
                             created: int) -> AsyncIterator[str]:
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(index: int, text: str, finish: str | None = None) -> str:
        return sse({"id": ident, "object": "text_completion", "created": created, "model": body.model,
                    "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish}],
                    **({"usage": None} if include_usage else {})})

    status, final = 200, None
    try:
        for i in range(len(choices)):
            if echoes[i // body.n]:
                yield chunk(i, echoes[i // body.n])
        async for i, event in run.events():
            c = choices[i]
            c.add(event)
            piece = c.delta()
            if piece or c.finish is not None:
                yield chunk(i, piece, c.finish)
        call.usage = usage_of(prompts, choices)
        if include_usage:
            yield sse({"id": ident, "object": "text_completion", "created": created, "model": body.model,
                       "choices": [], "usage": call.usage.to_openai()})
        final = completion_response(body, choices, echoes, ident, created, call.usage)
    except APIError as err:
        status, final = err.status, err.body()
        yield sse(final)
    except (asyncio.CancelledError, GeneratorExit):
        run.cancel()
        call.usage = usage_of(prompts, choices)
        call.finish_later(CLIENT_CLOSED, None)
        raise
    finally:
        run.cancel()
    await call.finish(status, final)  # before [DONE]: a client that has read the stream finds the call recorded
    yield sse("[DONE]")


__all__ = ["router"]
