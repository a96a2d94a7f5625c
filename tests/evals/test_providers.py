"""Providers: a local model (the tiny one), an OpenAI-compatible endpoint (a stub server), the factory."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from agentladder.data import Message
from agentladder.evals import (
    LocalProvider,
    OpenAIProvider,
    ProviderError,
    ScriptedProvider,
    evaluate,
    make_provider,
)
from agentladder.evals.local import (
    _buffered_layer_class,
    _stop_after_json_class,
    shared_prefix_length,
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


def test_shared_prefix_cache_gives_the_same_tokens(model, tok):
    from agentladder.tasks import get_task

    task = get_task("medication-directions")
    rows = task.make("test", 3)
    prompts = [task.prompt(r, task.select_shots(1, rows)) for r in rows]
    cached = LocalProvider(model=model, tokenizer=tok, batch_size=3)
    plain = LocalProvider(model=model, tokenizer=tok, batch_size=3, prefix_cache=False)
    # Decode token ids, not text: the random tiny model mostly emits whitespace.
    tok_decode = tok.decode
    try:
        tok.decode = lambda ids, **kw: ",".join(str(int(i)) for i in ids)
        a = cached.complete(prompts, max_new_tokens=6)
        b = plain.complete(prompts, max_new_tokens=6)
    finally:
        tok.decode = tok_decode
    assert a == b and all(len(x.split(",")) == 6 for x in a)
    assert cached._prefix is not None and len(cached._prefix[0]) > 1000  # the system prompt and the shot


def test_buffered_cache_layer_returns_what_concatenation_would():
    from transformers.cache_utils import DynamicLayer

    g = torch.Generator().manual_seed(0)

    def kv(batch, n):  # (B, H, T, D)
        return torch.randn(batch, 2, n, 4, generator=g), torch.randn(batch, 2, n, 4, generator=g)

    prefix_k, prefix_v = kv(1, 5)
    layer = _buffered_layer_class()(prefix_k, prefix_v, 3, 7)
    ref = DynamicLayer()
    ref.update(prefix_k.repeat(3, 1, 1, 1), prefix_v.repeat(3, 1, 1, 1))
    assert layer.get_seq_length() == 5
    for new in (2, 1, 3):  # 5 + 2 fills the 7 positions; the next steps grow the buffer
        k, v = kv(3, new)
        got, want = layer.update(k, v), ref.update(k, v)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        assert layer.get_seq_length() == ref.get_seq_length()
    layer.crop(-2)  # generate may trim a cache in place of update; the next update starts from what is left
    ref.crop(-2)
    k, v = kv(3, 1)
    got, want = layer.update(k, v), ref.update(k, v)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]) and layer.get_seq_length() == 10


def test_shared_prefix_length():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # each row keeps a token to prefill
    assert shared_prefix_length([[1], [2]]) == 0 and shared_prefix_length([]) == 0


def test_stop_after_json_criterion():
    # Vocabulary of 5 pieces: 0 "a", 1 "{", 2 "}", 3 "{}", 4 "x".
    opens, closes = torch.tensor([0, 1, 0, 1, 0]), torch.tensor([0, 0, 1, 1, 0])
    stop = _stop_after_json_class()(opens, closes, batch=3)
    rows = torch.tensor([[0, 1, 2], [1, 0, 2], [3, 4, 4]])  # a { }   { a }   {} x x
    seen = [stop(rows[:, : t + 1], None).tolist() for t in range(3)]
    assert seen == [[False, False, True], [False, False, True], [True, True, True]]


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
        answer = {"choices": [{"message": {"role": "assistant", "content": "echo: " + body["messages"][-1]["content"]}}]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

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
