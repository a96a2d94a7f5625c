"""The gateway in front of another OpenAI-compatible server (what ``--engine vllm`` runs): the proxying against a
real upstream on loopback (the tiny server), vLLM's command line, and starting and stopping an upstream process."""

import asyncio
import json
import socket
import sys
from pathlib import Path

import httpx
import openai
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from agentladder.agents.store import Store
from agentladder.errors import ConfigError
from agentladder.models.loading import resolve
from agentladder.serve.gateway import (
    GatewayHooks,
    ProxyState,
    UpstreamProcess,
    create_key,
    create_proxy_app,
    open_db,
    vllm_command,
    vllm_env,
)
from agentladder.serve.gateway.proxy import Assembler, event_lines, upstream_error
from agentladder.serve.gateway.usage import rows
from agentladder.serve.gateway.vllm import max_lora_rank
from tests.serve.conftest import LiveServer, make_adapter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def proxy(server, tmp_path_factory):
    root = tmp_path_factory.mktemp("proxy")
    hooks = GatewayHooks(open_db(root / "gateway.db"), store=Store(root / "traces.db"), provider_name="vllm")
    with LiveServer(None, app=create_proxy_app(ProxyState(server.url, hooks))) as live:
        live.hooks = hooks
        yield live
    hooks.close()


@pytest.fixture(scope="module")
def key(proxy):
    secret, rec = create_key(proxy.hooks.db, "pharmacy", record=True)
    return secret, rec


def test_the_proxy_relays_chat_streams_tools_completions_embeddings_and_models(proxy, server, key):
    secret, rec = key
    messages = [{"role": "user", "content": "Say hello"}]
    with openai.OpenAI(base_url=proxy.base_url, api_key=secret, max_retries=0) as via, \
            openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as direct:
        greedy = {}
        for model in ("tiny", "alpha"):
            a = via.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0)
            b = direct.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0)
            assert a.choices[0].message.content == b.choices[0].message.content and a.usage == b.usage
            greedy[model] = a
        chunks = list(via.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0,
                                                  stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == greedy["tiny"].choices[0].message.content
        assert all(c.choices for c in chunks), "the usage event the gateway asked for is not relayed"
        with_usage = list(via.chat.completions.create(model="tiny", messages=messages, max_tokens=8, stream=True,
                                                      stream_options={"include_usage": True}))
        assert with_usage[-1].usage.completion_tokens >= 1 and with_usage[-1].choices == []
        weather = {"type": "function", "function": {"name": "weather", "parameters": {
            "type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]}}, "required": ["city"]}}}
        for stream in (False, True):
            got = via.chat.completions.create(model="tiny", messages=messages, max_tokens=120, tools=[weather],
                                              tool_choice="required", temperature=0, stream=stream)
            if stream:
                got = list(got)
                calls = [tc for c in got if c.choices for tc in c.choices[0].delta.tool_calls or []]
            else:
                calls = got.choices[0].message.tool_calls
            assert calls[0].function.name == "weather" and json.loads(calls[0].function.arguments)["city"]
        text = via.completions.create(model="beta", prompt="once", max_tokens=5, temperature=0)
        assert text.choices[0].text == direct.completions.create(model="beta", prompt="once", max_tokens=5,
                                                                 temperature=0).choices[0].text
        assert len(via.embeddings.create(model="all-MiniLM-L6-v2", input="x").data[0].embedding) == 384
        assert {m.id for m in via.models.list().data} >= {"tiny", "alpha", "beta"}
    charged = [r for r in rows(proxy.hooks.db) if r["key_id"] == rec.id]
    assert len(charged) == 9 and all(r["status"] == 200 for r in charged)
    streamed = [r for r in charged if r["request_id"] == chunks[0].id][0]
    assert (streamed["prompt_tokens"], streamed["completion_tokens"]) == (
        greedy["tiny"].usage.prompt_tokens, greedy["tiny"].usage.completion_tokens), "charged from the usage event"
    recorded = proxy.hooks.store.trajectories(session=rec.id)
    assert len(recorded) == 6, "every chat call of a recording key, streamed ones too"
    tool_turn = [r for r in recorded if r["conversation"].messages[-1].tool_calls]
    assert len(tool_turn) == 2 and tool_turn[0]["conversation"].messages[-1].tool_calls[0].name == "weather"
    spans = [s for s in proxy.hooks.store.spans() if s["attributes"].get("agentladder.key.id") == rec.id]
    assert len(spans) == 9 and spans[0]["attributes"]["gen_ai.provider.name"] == "vllm"


def test_the_proxy_checks_keys_first_and_relays_upstream_errors_with_their_status(proxy, key):
    secret, _ = key
    body = {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
    assert httpx.post(proxy.base_url + "/chat/completions", json=body).status_code == 401
    headers = {"Authorization": f"Bearer {secret}"}
    missing = httpx.post(proxy.base_url + "/chat/completions", json={**body, "model": "nope"}, headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    bad = httpx.post(proxy.base_url + "/chat/completions", json={**body, "messages": []}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "messages"
    junk = httpx.post(proxy.base_url + "/chat/completions", content=b"{", headers=headers)
    assert junk.status_code == 400 and junk.json()["error"]["code"] == "invalid_json"
    assert httpx.get(proxy.url + "/health").json()["status"] == "ok"
    assert b"agentladder_requests_total" in httpx.get(proxy.url + "/metrics").content


def test_an_upstream_that_does_not_answer_is_a_502(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = ProxyState(f"http://127.0.0.1:{port}/v1")
    with LiveServer(None, app=create_proxy_app(state)) as live:
        answer = httpx.post(live.base_url + "/completions", json={"model": "m", "prompt": "x"})
        assert answer.status_code == 502 and answer.json()["error"]["code"] == "upstream_unavailable"
        assert httpx.get(live.url + "/health").status_code == 503


def test_upstream_errors_in_either_shape_and_stream_assembly():
    flat = upstream_error(400, json.dumps({"object": "error", "message": "bad", "type": "BadRequestError",
                                           "param": None, "code": 400}).encode())
    assert (flat.status, flat.message, flat.code) == (400, "bad", None)
    nested = upstream_error(404, json.dumps({"error": {"message": "gone", "code": "model_not_found"}}).encode())
    assert (nested.status, nested.code) == (404, "model_not_found")
    assert upstream_error(500, b"<html>oops").message == "<html>oops"
    asm = Assembler(chat=True)
    asm.add({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]})
    asm.add({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "t1", "function": {"name": "f", "arguments": '{"a"'}}]}}]})
    asm.add({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": ": 1}"}}]}, "finish_reason": "tool_calls"}]})
    asm.add({"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    whole = asm.response()
    assert whole["choices"][0]["message"]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert whole["choices"][0]["message"]["content"] == "Hi" and whole["usage"]["total_tokens"] == 7


def test_the_vllm_command_serves_the_base_and_every_specialist_with_lora_on(tmp_path):
    a = make_adapter(tmp_path / "a", 1)
    b = make_adapter(tmp_path / "b", 2)
    cmd = vllm_command("smollm2-135m", {"parser": str(a), "triage": str(b)}, port=8123,
                       served_model_name="smollm2-135m", max_model_len=2048, extra=["--gpu-memory-utilization=0.5"])
    assert cmd[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--model") + 1] == resolve("smollm2-135m") and Path(cmd[cmd.index("--model") + 1]).is_dir()
    assert "--enable-lora" in cmd and cmd[cmd.index("--max-loras") + 1] == "2"
    assert cmd[cmd.index("--max-lora-rank") + 1] == "8"  # rank 4 rounds up to vLLM's smallest
    i = cmd.index("--lora-modules")
    assert cmd[i + 1:i + 3] == [f"parser={a.resolve()}", f"triage={b.resolve()}"]
    assert cmd[cmd.index("--port") + 1] == "8123" and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--max-model-len") + 1] == "2048" and cmd[-1] == "--gpu-memory-utilization=0.5"
    assert vllm_env({"A": "1"}) == {"A": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    with pytest.raises(ConfigError, match="not a LoRA adapter folder"):
        vllm_command("smollm2-135m", {"x": str(tmp_path)}, port=1)
    cfg = json.loads((a / "adapter_config.json").read_text())
    (a / "adapter_config.json").write_text(json.dumps({**cfg, "r": 20}))
    assert max_lora_rank({"a": str(a)}) == 32


def test_an_upstream_process_starts_serves_and_stops(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "agentladder", "serve", "--model", "tiny", "--port", str(port),
           "--log-level", "warning"]
    env = {**vllm_env(), "PYTHONPATH": str(ROOT)}
    with UpstreamProcess(cmd, f"http://127.0.0.1:{port}", env=env, startup_timeout=120) as up:
        assert httpx.get(up.url + "/v1/models").json()["data"][0]["id"] == "tiny"
        proc = up.proc
    assert proc.poll() is not None
    failing = UpstreamProcess([sys.executable, "-c", "print('no GPU here'); raise SystemExit(3)"],
                              "http://127.0.0.1:9", startup_timeout=30)
    with pytest.raises(ConfigError, match="exited with status 3") as err:
        failing.start()
    assert "no GPU here" in str(err.value)


def test_event_lines_cut_at_cr_lf_and_crlf_only_wherever_the_chunks_split():
    text = 'data: {"a": "one\u2028two\u0085three\u2029"}\r\ndata: b\rdata: c\n\ndata: d'
    want = ['data: {"a": "one\u2028two\u0085three\u2029"}', "data: b", "data: c", "", "data: d"]

    async def lines(chunks):
        async def gen():
            for c in chunks:
                yield c
        return [line async for line in event_lines(gen())]

    for size in (1, 2, 3, 5, len(text)):
        assert asyncio.run(lines([text[i:i + size] for i in range(0, len(text), size)])) == want, size
    assert asyncio.run(lines(["data: x\r", "\n", "data: y\r"])) == ["data: x", "data: y"]


def test_a_stream_whose_upstream_writes_raw_unicode_line_breaks_is_relayed_whole():
    """An upstream that encodes its events as raw UTF-8 (as pydantic's ``model_dump_json`` does) leaves U+2028 and
    NEL unescaped; the gateway must not cut an event there."""
    pieces = ["line one\u2028line two", " and\u0085next", "\u2029end"]
    upstream = FastAPI()

    @upstream.post("/v1/chat/completions")
    async def chat():
        async def events():
            for piece in pieces:
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                body = f"data: {json.dumps(chunk, ensure_ascii=False)}\r\n\r\n".encode()
                yield body[:7]  # the event split across two writes
                yield body[7:]
            done = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}
            yield f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode()
        return StreamingResponse(events(), media_type="text/event-stream")

    with LiveServer(None, app=upstream) as up, \
            LiveServer(None, app=create_proxy_app(ProxyState(up.url))) as live:
        client = openai.OpenAI(base_url=live.base_url, api_key="none")
        chunks = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                     stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(pieces)
    assert chunks[-1].choices[0].finish_reason == "stop"
