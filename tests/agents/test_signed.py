"""Signed stateless tool calls: forged, altered, expired and replayed calls are refused and audited.

A real server (uvicorn on loopback) and the real client library (httpx), the keys and nonces in a
SQLite store; 1,000 fuzzed requests at the end.
"""

import asyncio
import json
import random
import threading
import time

import httpx
import pytest

from agentladder.agents import (
    Agent,
    JobQueue,
    KeyRing,
    LoopbackServer,
    Runtime,
    ScriptedChat,
    signed_app,
    signed_tools,
    tool,
)
from agentladder.agents.signing import (
    SIGNATURE_HEADER,
    Verifier,
    sign,
)
from agentladder.data.schema import ToolCall
from agentladder.errors import ConfigError


@pytest.fixture
def endpoint(tmp_path, pharmacy_tools):
    runtime = Runtime(tmp_path / "server.db")
    keys = KeyRing(runtime.store)
    key_id, secret = keys.add("k1")
    tools = [pharmacy_tools.check_formulary, pharmacy_tools.check_dose, pharmacy_tools.check_interactions]
    with LoopbackServer(signed_app(tools, runtime=runtime, max_skew=60, max_body=100_000)) as server:
        yield server.url, runtime, keys, key_id, secret


def _post(url, key, key_id, payload, *, path="/call", mutate=None, **sign_args):
    body = json.dumps(payload).encode()
    headers = sign(key, key_id, "POST", path, body, **sign_args)
    if mutate:
        body, headers, path = mutate(body, headers, path)
    return httpx.post(url + path, content=body, headers=headers, timeout=30)


CALL = {"tool": "check_dose", "arguments": {"drug": "ibuprofen", "strength_mg": 800, "dose_units": 2,
                                            "doses_per_day": 3}}


def _refusals(runtime):
    return [a["data"] for a in runtime.store.audit_log() if a["event"] == "signed_call_refused"]


def test_a_signed_call_is_answered(endpoint):
    url, runtime, _, key_id, secret = endpoint
    r = _post(url, secret, key_id, CALL)
    assert r.status_code == 200
    assert r.json() == {"ok": True, "value": {"daily_mg": 4800.0, "max_daily_mg": 3200.0, "over_limit": True},
                        "text": '{"daily_mg": 4800.0, "max_daily_mg": 3200.0, "over_limit": true}'}
    assert [a["event"] for a in runtime.store.audit_log()][-1] == "signed_call"


@pytest.mark.parametrize("case, status, reason", [
    ("forged", 401, "bad signature"),
    ("altered body", 401, "bad signature"),
    ("altered path", 401, "bad signature"),
    ("expired", 401, "expired timestamp"),
    ("future", 401, "timestamp in the future"),
    ("missing", 401, "missing signature header X-Agentladder-Signature"),
    ("unknown key", 401, "unknown or retired key 'k9'"),
    ("malformed signature", 401, "malformed signature"),
])
def test_bad_calls_are_refused_and_audited(endpoint, case, status, reason):
    url, runtime, _, key_id, secret = endpoint
    mutate, key, kid, extra = None, secret, key_id, {}
    if case == "forged":
        key = "not-the-key"
    elif case == "altered body":
        def mutate(body, headers, path):
            return body.replace(b"800", b"200"), headers, path
    elif case == "altered path":
        def mutate(body, headers, path):
            return body, headers, "/jobs/job-1/cancel"
    elif case == "expired":
        extra = {"timestamp": time.time() - 3600}
    elif case == "future":
        extra = {"timestamp": time.time() + 3600}
    elif case == "missing":
        def mutate(body, headers, path):
            return body, {k: v for k, v in headers.items() if k != SIGNATURE_HEADER}, path
    elif case == "unknown key":
        kid = "k9"
    elif case == "malformed signature":
        def mutate(body, headers, path):
            return body, {**headers, SIGNATURE_HEADER: "zz" * 40}, path
    r = _post(url, key, kid, CALL, mutate=mutate, **extra)
    assert r.status_code == status and r.json()["detail"] == reason
    assert _refusals(runtime)[-1]["reason"] == reason and _refusals(runtime)[-1]["key_id"] == kid


def test_a_replayed_call_is_refused(endpoint):
    url, runtime, _, key_id, secret = endpoint
    body = json.dumps(CALL).encode()
    headers = sign(secret, key_id, "POST", "/call", body)
    first = httpx.post(url + "/call", content=body, headers=headers)
    again = httpx.post(url + "/call", content=body, headers=headers)
    assert first.status_code == 200 and again.status_code == 409 and again.json()["detail"] == "replayed nonce"
    assert _refusals(runtime)[-1]["reason"] == "replayed nonce"


def test_two_keys_are_valid_during_a_rotation(endpoint):
    url, runtime, keys, old_id, old_secret = endpoint
    new_id, new_secret = keys.rotate(grace=30)
    assert keys.valid() == [old_id, new_id]
    assert _post(url, old_secret, old_id, CALL).status_code == 200
    assert _post(url, new_secret, new_id, CALL).status_code == 200
    keys.retire(old_id)
    refused = _post(url, old_secret, old_id, CALL)
    assert refused.status_code == 401 and refused.json()["detail"] == "unknown or retired key 'k1'"
    assert _post(url, new_secret, new_id, CALL).status_code == 200


def test_a_nonce_is_taken_once_under_concurrency(tmp_path):
    """Eight threads, and a second store connection (another process's view), race for one nonce."""
    first = Runtime(tmp_path / "shared.db")
    key_id, secret = KeyRing(first.store).add()
    second = Runtime(tmp_path / "shared.db")
    verifiers = [Verifier(KeyRing(first.store)), Verifier(KeyRing(second.store))]
    headers = sign(secret, key_id, "POST", "/call", b"{}")
    results, start = [], threading.Barrier(8)

    def attempt(i):
        start.wait()
        results.append(verifiers[i % 2].check("POST", "/call", headers, b"{}"))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is None for r in results) == 1
    assert sorted(r.reason for r in results if r is not None) == ["replayed nonce"] * 7


def test_the_agent_signs_transparently_and_sees_the_same_results(endpoint, pharmacy_tools):
    url, _, _, key_id, secret = endpoint
    tools = signed_tools(url, key=secret, key_id=key_id)
    assert [t.name for t in tools] == ["check_formulary", "check_dose", "check_interactions"]
    assert tools[1].output_schema["properties"]["over_limit"]

    def script():
        return ScriptedChat([ToolCall(name="check_dose", arguments=CALL["arguments"]),
                             ToolCall(name="check_interactions", arguments={"drug": "tramadol",
                                                                            "current_medications": ["sertraline"]}),
                             "flag"])

    local = Agent(script(), tools=[pharmacy_tools.check_dose, pharmacy_tools.check_interactions]).run(
        "x", runtime=Runtime(":memory:"))
    remote = Agent(script(), tools=tools).run("x", runtime=Runtime(":memory:"))
    assert remote.messages == local.messages
    with pytest.raises(ConfigError, match="refused the call .401: bad signature"):
        signed_tools(url, key="wrong", key_id=key_id)


def test_a_wrong_key_mid_run_is_a_tool_error_not_a_crash(endpoint):
    url, _, keys, key_id, secret = endpoint
    tools = signed_tools(url, key=secret, key_id=key_id)
    keys.retire(key_id)
    result = asyncio.run(tools[1].call(CALL["arguments"]))
    assert result.error_type == "ToolConnectionError" and "401: unknown or retired key" in result.text


def _fuzzed(rng, url, key_id, secret):
    """One request: valid, tampered, replayed or garbage; and what a correct server must answer."""
    kind = rng.choice(["valid", "valid", "tamper", "replay", "garbage-headers", "garbage-body", "stale",
                       "wrong-tool", "bad-args", "huge", "method", "path"])
    drug = rng.choice(["ibuprofen", "acetaminophen", "tramadol", "unknown", "ÿ" * rng.randint(0, 4)])
    args = {"drug": drug, "strength_mg": rng.choice([1, 200, 500, 800]), "dose_units": rng.randint(1, 3),
            "doses_per_day": rng.randint(1, 6)}
    payload = {"tool": "check_dose", "arguments": args}
    body = json.dumps(payload).encode()
    headers = sign(secret, key_id, "POST", "/call", body)
    method, path, expect = "POST", "/call", {200}
    if kind == "tamper":
        body = body.replace(b"dose_units", b"dose_units ", 1) if rng.random() < 0.5 else body + b" "
        expect = {401}
    elif kind == "replay":
        headers = dict(rng.choice(_fuzzed.sent)) if _fuzzed.sent else headers
        expect = {401, 409} if _fuzzed.sent else {200}
    elif kind == "garbage-headers":
        headers = {k: "".join(chr(rng.randint(32, 126)) for _ in range(rng.randint(0, 80))).strip()
                   for k in headers}                          # printable, as HTTP allows: no edge whitespace
        expect = {401}
    elif kind == "garbage-body":
        body = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 300)))
        headers = sign(secret, key_id, "POST", "/call", body)
        expect = {400}
    elif kind == "stale":
        headers = sign(secret, key_id, "POST", "/call", body, timestamp=time.time() - rng.uniform(61, 1e6))
        expect = {401}
    elif kind == "wrong-tool":
        body = json.dumps({"tool": "rm -rf", "arguments": {}}).encode()
        headers = sign(secret, key_id, "POST", "/call", body)
        expect = {404}
    elif kind == "bad-args":
        body = json.dumps({"tool": "check_dose", "arguments": {"drug": 5}}).encode()
        headers = sign(secret, key_id, "POST", "/call", body)
    elif kind == "huge":
        body = b"{" + b" " * 120_000 + b"}"
        headers = sign(secret, key_id, "POST", "/call", body)
        expect = {413}
    elif kind == "method":
        method, expect = rng.choice(["GET", "PUT", "DELETE", "PATCH"]), {405}
    elif kind == "path":
        path, expect = rng.choice(["/call/", "/jobs/x", "/tools", "/%00", "/health/x"]), {401, 404, 405, 307}
    return kind, method, path, body, headers, expect, args


_fuzzed.sent = []


def test_a_thousand_fuzzed_requests(endpoint, pharmacy_tools):
    url, runtime, _, key_id, secret = endpoint
    rng = random.Random(1234)
    counts, refused = {}, 0
    with httpx.Client(timeout=30, follow_redirects=False) as http:
        for _ in range(1000):
            kind, method, path, body, headers, expect, args = _fuzzed(rng, url, key_id, secret)
            r = http.request(method, url + path, content=body, headers=headers)
            assert r.status_code in expect, (kind, r.status_code, r.text[:200])
            counts[kind] = counts.get(kind, 0) + 1
            if r.status_code == 200 and kind == "valid":
                assert r.json()["value"] == pharmacy_tools.check_dose(**args).model_dump()
                _fuzzed.sent.append(headers)
            elif r.status_code == 200 and kind == "bad-args":
                assert r.json()["ok"] is False and r.json()["error_type"] == "ToolArgumentError"
            elif r.status_code in (400, 401, 409, 413) or (r.status_code == 404 and r.json()["detail"] != "Not Found"):
                refused += 1                                            # refused by the endpoint, so audited
        assert http.get(url + "/health").json()["ok"] is True            # still healthy
        assert _post(url, secret, key_id, CALL).status_code == 200         # and still answering
    assert len(counts) == 11 and min(counts.values()) > 40
    assert len(_refusals(runtime)) == refused


def test_a_job_over_the_signed_endpoint(tmp_path):
    runtime = Runtime(tmp_path / "jobs.db")
    key_id, secret = KeyRing(runtime.store).add()
    queue = JobQueue(runtime, poll_seconds=0.05)

    @queue.tool
    async def slow_square(x: int) -> int:
        """Square a number, slowly."""
        await asyncio.sleep(0.3)
        return x * x

    with LoopbackServer(signed_app([slow_square], runtime=runtime)) as server:
        (tool,) = signed_tools(server.url, key=secret, key_id=key_id)
        model = ScriptedChat([ToolCall(name="slow_square", arguments={"x": 7}), "49"])
        result = Agent(model, tools=[tool]).run("x", runtime=Runtime(":memory:"))
        assert [m.content for m in result.messages if m.role == "tool"] == ["49"]
        handle = asyncio.run(tool.call({"x": 3}, wait_jobs=False)).value
        assert handle.status == "pending" and asyncio.run(tool.job_source.job_cancel(handle.job)).status in (
            "cancelled", "cancelling")


def test_a_hanging_tool_and_a_gone_server_are_tool_errors(tmp_path):
    runtime = Runtime(tmp_path / "faults.db")
    key_id, secret = KeyRing(runtime.store).add()

    @tool
    async def stall(seconds: float) -> str:
        """Wait, then answer."""
        await asyncio.sleep(seconds)
        return "late"

    server = LoopbackServer(signed_app([stall], runtime=runtime)).start()
    (remote,) = signed_tools(server.url, key=secret, key_id=key_id, timeout=0.5)
    start = time.monotonic()
    hung = asyncio.run(remote.call({"seconds": 3}))   # the server finishes it before it stops
    assert hung.error_type == "ToolTimeout" and "gave no answer within 0.5 s" in hung.text
    assert time.monotonic() - start < 10
    server.stop()
    gone = asyncio.run(remote.call({"seconds": 0}))
    assert gone.error_type == "ToolConnectionError" and gone.text.startswith("error: ToolConnectionError: signed "
                                                                             "endpoint")
