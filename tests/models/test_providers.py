"""Providers: a local model (the tiny one), an OpenAI-compatible endpoint (a stub server), a script, the factory."""

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentladder.data import Message, ToolCall
from agentladder.evals import evaluate
from agentladder.models.providers import (
    LocalProvider,
    OpenAIProvider,
    ProviderError,
    ScriptedProvider,
    make_provider,
)

PROMPT = [Message(role="system", content="Answer in JSON."), Message(role="user", content="hi")]


def test_factory():
    assert isinstance(make_provider("tiny"), LocalProvider)
    remote = make_provider("openai:qwen2.5@http://localhost:8000/v1")
    assert isinstance(remote, OpenAIProvider) and remote.model == "qwen2.5"
    assert remote.base_url == "http://localhost:8000/v1" and remote.name == "openai:qwen2.5@http://localhost:8000/v1"
    script = ScriptedProvider(["x"])
    assert make_provider(script) is script
    with pytest.raises(ValueError):
        make_provider("openai:")


def test_local_tiny_model_answers_every_prompt_in_order():
    provider = LocalProvider("tiny", batch_size=2)
    prompts = [PROMPT, [Message(role="user", content="a much longer question than the first one")], PROMPT]
    done = []
    out = provider.complete(prompts, max_new_tokens=3, progress=done.append)
    assert len(out) == 3 and all(isinstance(t, str) for t in out)
    assert out[0] == out[2], "greedy decoding of the same prompt gives the same text, whatever its batch"
    assert sum(done) == 3
    provider.close()
    assert provider.model is None


class _Stub(BaseHTTPRequestHandler):
    requests: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, self.headers.get("Authorization"), body))
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"busy")
            return
        if body["model"] == "broken":
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "unknown model"}')
            return
        if body.get("stream"):
            self._stream("echo: " + body["messages"][-1]["content"])
            return
        answer = {"choices": [{"message": {"role": "assistant", "content": "echo: " + body["messages"][-1]["content"]}}]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, text):
        """Server-sent events: the text in three-character pieces, then the finish reason and usage."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        base = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "streamed"}
        chunks = [{**base, "choices": [{"index": 0, "delta": {"content": text[i : i + 3]}, "finish_reason": None}]}
                  for i in range(0, len(text), 3)]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}})
        for c in chunks:
            self.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Stub.requests, _Stub.fail_first = [], 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_openai_compatible_endpoint(server):
    _Stub.fail_first = 1  # one 503 first: retried
    provider = OpenAIProvider("m", base_url=server, api_key="k", concurrency=2)
    prompts = [[Message(role="user", content=f"q{i}")] for i in range(5)]
    assert provider.complete(prompts, max_new_tokens=7) == [f"echo: q{i}" for i in range(5)]
    path, auth, body = _Stub.requests[-1]
    assert path == "/v1/chat/completions" and auth == "Bearer k"
    assert body["max_tokens"] == 7 and body["temperature"] == 0.0 and body["messages"][0]["role"] == "user"
    assert len(_Stub.requests) == 6


def test_openai_errors_are_one_line(server):
    with pytest.raises(ProviderError, match="HTTP 400.*unknown model"):
        OpenAIProvider("broken", base_url=server).complete([PROMPT])
    with pytest.raises(ProviderError, match="cannot reach"):
        OpenAIProvider("m", base_url="http://127.0.0.1:9/v1", retries=0, timeout=2).complete([PROMPT])


def test_evaluate_through_an_endpoint(server, tmp_path):
    report = evaluate([f"openai:m@{server}"], data=None, limit=3, out=tmp_path, progress=False)
    result = report.models[f"openai:m@{server}"]
    assert result.metrics["validity"].value == 0.0 and result.generated == 3
    assert all(rec["output"].startswith("echo: ") for rec in result.records)


def test_lora_run_folder_loads_merged(tmp_path, tok):
    from agentladder.models import attach_lora, save_adapter, tiny_model

    folder = tmp_path / "lora-run"
    save_adapter(attach_lora(tiny_model(tokenizer=tok)), folder)
    (folder / "agentladder.json").write_text(json.dumps({"base_model": "tiny", "lora": True}))
    tuned, base = LocalProvider(str(folder)), LocalProvider("tiny")
    tuned.prepare()
    assert not hasattr(tuned.model, "peft_config"), "adapters are merged into the base for evaluation"
    # Fresh LoRA adapters start as a zero update, so the merged model answers as its base.
    assert tuned.complete([PROMPT], max_new_tokens=4) == base.complete([PROMPT], max_new_tokens=4)


def test_openai_streaming_and_async(server):
    provider = OpenAIProvider("m", base_url=server, api_key="k")
    pieces = []
    reply = provider.chat([Message(role="user", content="hello there")], on_text=pieces.append)
    assert reply.message.content == "echo: hello there" == "".join(pieces) and len(pieces) > 3
    assert _Stub.requests[-1][2]["stream"] is True
    assert reply.model == "streamed" and reply.usage.input_tokens == 5 and reply.usage.output_tokens == 4
    again = asyncio.run(provider.achat([Message(role="user", content="q")], max_new_tokens=3))
    assert again.message.content == "echo: q" and _Stub.requests[-1][2]["max_tokens"] == 3


def test_scripted_provider_answers_from_a_list_a_mapping_or_a_function():
    listed = ScriptedProvider(["a", "b"], default="z")
    assert listed.complete([PROMPT, PROMPT, PROMPT]) == ["a", "b", "z"]
    assert listed.calls[0] == PROMPT and listed.calls[0][1].content == "hi" and listed.calls[0].tools == []
    keyed = ScriptedProvider({"hi": "hello"})
    assert keyed.chat(PROMPT).message.content == "hello"
    with pytest.raises(KeyError, match="no scripted answer"):
        keyed.chat([Message(role="user", content="other")])
    one_arg = ScriptedProvider(lambda messages: f"{len(messages)} turns")
    assert one_arg.complete([PROMPT]) == ["2 turns"]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"properties": {}}}}
    two_args = ScriptedProvider(lambda messages, tools: ToolCall(name=tools[0]["function"]["name"]))
    reply = two_args.chat(PROMPT, tools=[tool])
    assert reply.finish_reason == "tool_calls" and reply.message.tool_calls[0].name == "f"
    assert reply.message.tool_calls[0].id == "call-1" and two_args.calls[0].tools == [tool]
    with pytest.raises(IndexError, match="only 0 answers"):
        ScriptedProvider([]).chat(PROMPT)


def test_local_chat_streams_every_piece_of_the_answer(tok, model):
    provider = LocalProvider(model=model, tokenizer=tok)
    pieces = []
    reply = provider.chat(PROMPT, max_new_tokens=8, on_text=pieces.append)
    assert "".join(pieces).strip() == reply.message.content
    assert reply.usage.output_tokens == 8 and reply.finish_reason == "length"
