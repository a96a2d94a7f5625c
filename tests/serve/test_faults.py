"""Bad input and faults: 1,200 generated bodies, a client that goes away mid-stream, SIGTERM with a request in flight."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ERROR_KEYS = {"message", "type", "param", "code"}
ODD = [None, True, -1, 0, 1, 2.5, "", "x", "tiny", [], [1], {}, {"a": 1}, 10**12, -(10**12), "\u0000\ud7ff", [[]]]


def _valid(rng: random.Random, endpoint: str) -> dict:
    model = rng.choice(["tiny", "alpha", "beta", "nope", "all-MiniLM-L6-v2"])
    if endpoint == "chat":
        body = {"model": model, "messages": [{"role": rng.choice(["system", "user"]), "content": "hi"},
                                             {"role": "user", "content": rng.choice(["a", "ok", "\u00e9\u6f22"])}],
                "max_tokens": rng.choice([1, 2, 4]), "temperature": rng.choice([0, 0.7]),
                "stream": rng.random() < 0.3}
        if rng.random() < 0.2:
            body["response_format"] = rng.choice([{"type": "json_object"}, {"type": "text"},
                                                  {"type": "json_schema", "json_schema": {"name": "x", "schema": {
                                                      "type": "object", "properties": {"a": {"type": "boolean"}}}}}])
        if rng.random() < 0.2:
            body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
            body["tool_choice"] = rng.choice(["auto", "none", "required"])
        return body
    if endpoint == "completions":
        return {"model": model, "prompt": rng.choice(["x", ["a", "b"], [1, 2, 3], [[5], [6, 7]]]),
                "max_tokens": rng.choice([1, 3]), "n": rng.choice([1, 2]), "stream": rng.random() < 0.3,
                "logprobs": rng.choice([None, 0, 2])}
    if endpoint == "embeddings":
        return {"model": model, "input": rng.choice(["x", ["a", "b"], [1, 2]]),
                "encoding_format": rng.choice(["float", "base64"])}
    if endpoint == "load":
        return {"lora_name": rng.choice(["alpha", "zzz", ""]), "lora_path": rng.choice(["/nope", ""])}
    return {"lora_name": rng.choice(["zzz", "", "unknown"])}  # never a served name: the other tests use them


def _mutate(rng: random.Random, body: dict) -> dict:
    body = json.loads(json.dumps(body))
    for _ in range(rng.randint(1, 3)):
        target = body
        if "messages" in body and rng.random() < 0.4:
            messages = body["messages"]
            target = rng.choice(messages) if isinstance(messages, list) and messages else body
            target = target if isinstance(target, dict) else body
        keys = list(target) + ["extra", "n", "stop", "seed", "top_p", "logit_bias", "top_logprobs"]
        key = rng.choice(keys)
        if rng.random() < 0.3 and key in target:
            del target[key]
        else:
            target[key] = rng.choice(ODD)
    return body


def _bodies(n: int, seed: int = 0):
    rng = random.Random(seed)
    paths = {"chat": "/v1/chat/completions", "completions": "/v1/completions", "embeddings": "/v1/embeddings",
             "load": "/v1/load_lora_adapter", "unload": "/v1/unload_lora_adapter"}
    for _ in range(n):
        endpoint = rng.choice(["chat"] * 4 + ["completions"] * 3 + ["embeddings", "load", "unload"])
        roll = rng.random()
        if roll < 0.08:
            raw = rng.choice([b"", b"{", b"[1, 2]", b"null", b"\xff\xfe", b'"text"', b"{}", b'{"model": }'])
        elif roll < 0.25:
            raw = json.dumps(_valid(rng, endpoint)).encode()
        else:
            raw = json.dumps(_mutate(rng, _valid(rng, endpoint))).encode()
        yield paths[endpoint], raw


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        err = response.json()["error"]
        assert set(err) == ERROR_KEYS and isinstance(err["message"], str) and err["message"]
        return
    if response.headers["content-type"].startswith("text/event-stream"):
        lines = [ln for ln in response.text.split("\n\n") if ln]
        assert lines[-1] == "data: [DONE]"
        for ln in lines[:-1]:
            chunk = json.loads(ln.removeprefix("data: "))
            assert "choices" in chunk or "error" in chunk
    elif response.headers["content-type"].startswith("application/json"):
        body = response.json()
        assert "choices" in body or "data" in body
    else:
        assert response.text.startswith("Success:")


def test_a_thousand_generated_bodies_get_well_formed_answers(server):
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=60) as http:
        for path, raw in _bodies(1200):
            response = http.post(server.url + path, content=raw, headers={"content-type": "application/json"})
            _check(response)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        health = http.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["running"] == health["waiting"] == 0
    assert statuses.get(200, 0) > 50 and statuses.get(400, 0) > 500 and 404 in statuses
    assert sum(statuses.values()) == 1200


def test_a_client_that_disconnects_mid_stream_frees_its_slot(server):
    body = {"model": "tiny", "prompt": "go on and on", "max_tokens": 3000, "ignore_eos": True, "stream": True}
    with httpx.Client(timeout=60) as http:
        with http.stream("POST", server.base_url + "/completions", json=body) as response:
            lines = response.iter_lines()
            got = [next(lines) for _ in range(6)]
            assert any(ln.startswith("data: {") for ln in got)
            assert server.state.scheduler.running == 1
        deadline = time.time() + 20
        while server.state.scheduler.running and time.time() < deadline:
            time.sleep(0.05)
        assert server.state.scheduler.running == 0, "the sequence left the batch"
        assert http.get(server.url + "/health").json()["running"] == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_finishes_the_requests_in_flight(tmp_path):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "agentladder", "serve", "--model", "tiny", "--port", str(port),
                             "--log-level", "warning"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.time() < deadline, proc.stdout.read().decode()
            time.sleep(0.2)
        body = {"model": "tiny", "prompt": "keep going", "max_tokens": 400, "ignore_eos": True, "stream": True}
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=120) as response:
            lines = response.iter_lines()
            first = next(ln for ln in lines if ln.startswith("data: {"))
            proc.send_signal(signal.SIGTERM)
            rest = [ln for ln in lines if ln.startswith("data:")]
        chunks = [json.loads(ln[6:]) for ln in [first, *rest] if ln != "data: [DONE]"]
        assert rest[-1] == "data: [DONE]" and chunks[-1]["choices"][0]["finish_reason"] == "length"
        # uvicorn re-raises the signal it caught once its graceful shutdown is done: the exit says SIGTERM.
        assert proc.wait(60) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_event_whose_text_holds_unicode_line_breaks_stays_one_data_line():
    # a sampled token can decode to NEL or a line separator: JSON leaves them raw, and a client that splits lines
    # as str.splitlines does (httpx's iter_lines) would cut the event's JSON in two
    from agentladder.serve.routes import sse

    chunk = {"choices": [{"index": 0, "text": "a\x85b\u2028c\u2029d\ne\u00e9"}]}
    lines = sse(chunk).splitlines()
    assert lines[1:] == [""] and lines[0].startswith("data: ")
    assert json.loads(lines[0][len("data: "):]) == chunk
