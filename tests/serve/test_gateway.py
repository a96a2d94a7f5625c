"""The gateway on a real server (tiny model): keys, limits, budgets, usage rows, recording, spans, the CLI."""

import json

import httpx
import openai
import pytest
from typer.testing import CliRunner

from agentladder.agents.store import Store
from agentladder.cli import app
from agentladder.data.io import read_jsonl
from agentladder.data.schema import Conversation, PreferencePair, RLPrompt
from agentladder.serve import load_state
from agentladder.serve.gateway import (
    GatewayHooks,
    create_key,
    list_keys,
    open_db,
    report,
    revoke_key,
)
from agentladder.serve.gateway.hooks import retry_after
from agentladder.serve.gateway.usage import Window, rows
from tests.serve.conftest import LiveServer

ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, adapters):
    root = tmp_path_factory.mktemp("gateway")
    hooks = GatewayHooks(open_db(root / "gateway.db"), store=Store(root / "traces.db"))
    state = load_state("tiny", adapters=adapters, embeddings="all-MiniLM-L6-v2", hooks=hooks, max_batch=16,
                       default_max_tokens=16)
    with LiveServer(state) as live:
        live.hooks, live.root = hooks, root
        yield live
    hooks.close()


def _key(gateway, **kw):
    return create_key(gateway.hooks.db, kw.pop("team", "pharmacy"), **kw)


def _client(gateway, secret):
    return openai.OpenAI(base_url=gateway.base_url, api_key=secret, max_retries=0)


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    err = response.json()["error"]
    assert set(err) == ERROR_KEYS and err["code"] == code and err["message"]
    return err


def test_keys_are_stored_hashed_and_found_by_their_secret(gateway):
    secret, rec = _key(gateway, name="hashed", models=["alpha"])
    assert secret.startswith("al-") and len(secret) > 40
    raw = gateway.hooks.db.query("SELECT * FROM gateway_keys WHERE id = ?", (rec.id,))[0]
    assert secret not in json.dumps(raw) and raw["hash"] != secret and len(raw["hash"]) == 64
    assert raw["prefix"] == secret[:10]
    assert [k.id for k in list_keys(gateway.hooks.db)].count(rec.id) == 1


def test_missing_wrong_and_revoked_keys_get_401_in_the_openai_shape(gateway):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    url = gateway.base_url + "/chat/completions"
    _error(httpx.post(url, json=body), 401, "missing_api_key")
    _error(httpx.post(url, json=body, headers={"Authorization": "Bearer al-wrong"}), 401, "invalid_api_key")
    secret, rec = _key(gateway)
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    revoke_key(gateway.hooks.db, rec.id)
    _error(httpx.post(url, json=body, headers={"Authorization": f"Bearer {secret}"}), 401, "revoked_api_key")
    with _client(gateway, secret) as client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert httpx.get(gateway.url + "/health").json()["status"] == "ok", "the server keeps serving"


def test_a_key_calls_only_its_models_and_admin_routes_need_an_admin_key(gateway):
    secret, _ = _key(gateway, models=["alpha"])
    with _client(gateway, secret) as client:
        assert client.chat.completions.create(model="alpha", messages=[{"role": "user", "content": "x"}],
                                              max_tokens=2).choices
        with pytest.raises(openai.PermissionDeniedError) as err:
            client.chat.completions.create(model="beta", messages=[{"role": "user", "content": "x"}], max_tokens=2)
        assert err.value.body["code"] == "model_not_allowed"
    load = {"lora_name": "gamma", "lora_path": "/nope"}
    headers = {"Authorization": f"Bearer {secret}"}
    _error(httpx.post(gateway.base_url + "/load_lora_adapter", json=load, headers=headers), 403, "admin_required")
    admin, _ = _key(gateway, admin=True)
    answer = httpx.post(gateway.base_url + "/load_lora_adapter", json=load, headers={"Authorization": f"Bearer {admin}"})
    assert answer.status_code == 404, "an admin key reaches the route (the folder does not exist)"


def test_rpm_limit_answers_429_with_retry_after(gateway):
    secret, rec = _key(gateway, rpm=3)
    headers = {"Authorization": f"Bearer {secret}"}
    body = {"model": "tiny", "prompt": "a", "max_tokens": 1}
    codes = [httpx.post(gateway.base_url + "/completions", json=body, headers=headers) for _ in range(5)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
    err = _error(codes[3], 429, "rate_limit_exceeded")
    assert err["type"] == "rate_limit_error" and "rpm 3" in err["message"]
    assert 1 <= int(codes[3].headers["retry-after"]) <= 60
    with _client(gateway, secret) as client, pytest.raises(openai.RateLimitError):
        client.completions.create(model="tiny", prompt="a", max_tokens=1)
    statuses = [r["status"] for r in rows(gateway.hooks.db) if r["key_id"] == rec.id]
    assert statuses.count(200) == 3 and statuses.count(429) == 3, "refusals are usage rows too"


def test_tpm_limit_and_token_budget(gateway):
    secret, _ = _key(gateway, tpm=5)
    headers = {"Authorization": f"Bearer {secret}"}
    body = {"model": "tiny", "prompt": "one two three", "max_tokens": 4, "ignore_eos": True}
    first = httpx.post(gateway.base_url + "/completions", json=body, headers=headers)
    assert first.status_code == 200 and first.json()["usage"]["total_tokens"] >= 5
    _error(httpx.post(gateway.base_url + "/completions", json=body, headers=headers), 429, "rate_limit_exceeded")
    secret, rec = _key(gateway, token_budget=10)
    headers = {"Authorization": f"Bearer {secret}"}
    used = 0
    while used < 10:
        answer = httpx.post(gateway.base_url + "/completions", json=body, headers=headers)
        assert answer.status_code == 200
        used += answer.json()["usage"]["total_tokens"]
    err = _error(httpx.post(gateway.base_url + "/completions", json=body, headers=headers), 429, "insufficient_quota")
    assert err["type"] == "insufficient_quota"
    assert [k for k in list_keys(gateway.hooks.db) if k.id == rec.id][0].tokens_used == used


def test_usage_rows_match_what_the_client_was_told(gateway):
    secret, rec = _key(gateway, team="billing")
    with _client(gateway, secret) as client:
        whole = client.chat.completions.create(model="beta", messages=[{"role": "user", "content": "count"}],
                                               max_tokens=5, temperature=0)
        chunks = list(client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "go"}],
                                                     max_tokens=6, stream=True,
                                                     stream_options={"include_usage": True}))
        vectors = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a b c"])
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}], max_tokens=2)
    mine = {r["request_id"] or r["endpoint"]: r for r in rows(gateway.hooks.db) if r["key_id"] == rec.id}
    assert len(mine) == 4
    row = mine[whole.id]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (whole.usage.prompt_tokens,
                                                                 whole.usage.completion_tokens)
    assert row["team"] == "billing" and row["model"] == "beta" and row["status"] == 200 and row["latency"] > 0
    streamed = mine[chunks[0].id]
    assert streamed["completion_tokens"] == chunks[-1].usage.completion_tokens
    assert mine["/v1/embeddings"]["prompt_tokens"] == vectors.usage.prompt_tokens
    assert [r for r in mine.values() if r["status"] == 404][0]["model"] == "nope"
    by_team = {r["team"]: r for r in report(gateway.hooks.db, "team")}
    assert by_team["billing"]["requests"] == 4 and by_team["billing"]["errors"] == 1
    assert by_team["billing"]["total_tokens"] == sum(r["prompt_tokens"] + r["completion_tokens"] for r in mine.values())


def test_recorded_calls_export_as_sft_rows_pairs_and_rl_prompts(gateway, tmp_path):
    secret, rec = _key(gateway, team="pharmacy", record=True)
    plain, _ = _key(gateway, team="pharmacy")
    messages = [{"role": "system", "content": "Parse."}, {"role": "user", "content": "ibuprofen 200 mg"}]
    with _client(gateway, secret) as client:
        whole = client.chat.completions.create(model="alpha", messages=messages, max_tokens=6, n=2, temperature=1,
                                               seed=3)
        chunks = list(client.chat.completions.create(model="alpha", messages=messages, max_tokens=6, stream=True))
    with _client(gateway, plain) as client:
        client.chat.completions.create(model="alpha", messages=messages, max_tokens=6)
    store = gateway.hooks.store
    mine = store.trajectories(session=rec.id)
    assert len(mine) == 3 and len(store.trajectories(agent="alpha")) == 3, "an unrecorded key leaves no trace"
    by_run = {}
    for r in mine:
        by_run.setdefault(r["run_id"], []).append(r["conversation"])
    answers = sorted(c.messages[-1].content for c in by_run[whole.id])
    assert answers == sorted(c.message.content for c in whole.choices)
    streamed = by_run[chunks[0].id][0]
    assert streamed.messages[-1].content == "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [m.role for m in streamed.messages] == ["system", "user", "assistant"]
    assert streamed.metadata["team"] == "pharmacy" and streamed.metadata["source"] == "serve"
    for i, conv in enumerate(by_run[whole.id]):  # scored, as a grader would, to make pairs
        store.add_rewards(conv.id, {"score": float(i)})
    db = str(store.path)
    runner = CliRunner()
    for fmt in ("sft", "preference", "rl"):
        out = tmp_path / f"{fmt}.jsonl"
        done = runner.invoke(app, ["traces", "export", "--to", fmt, "--out", str(out), "--db", db,
                                   "--where", f"agent == alpha and session == {rec.id}"])
        assert done.exit_code == 0, done.output
    sft = read_jsonl(tmp_path / "sft.jsonl", Conversation)
    assert len(sft) == 3 and all(c.messages[-1].is_trained and not c.messages[0].is_trained for c in sft)
    pairs = read_jsonl(tmp_path / "preference.jsonl", PreferencePair)
    assert len(pairs) == 1 and pairs[0].prompt[-1].content == "ibuprofen 200 mg"
    assert pairs[0].chosen[-1].content == by_run[whole.id][1].messages[-1].content
    rl = read_jsonl(tmp_path / "rl.jsonl", RLPrompt)
    assert len(rl) == 1 and rl[0].prompt[-1].content == "ibuprofen 200 mg"


def test_every_call_is_a_span_with_the_genai_attributes(gateway):
    secret, rec = _key(gateway, team="spans")
    with _client(gateway, secret) as client:
        reply = client.chat.completions.create(model="beta", messages=[{"role": "user", "content": "x"}],
                                               max_tokens=3, temperature=0)
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="beta", messages=[], max_tokens=3)
    spans = [s for s in gateway.hooks.store.spans() if s["attributes"].get("agentladder.key.id") == rec.id]
    assert [s["name"] for s in spans] == ["chat beta", "chat beta"]
    ok, bad = spans
    a = ok["attributes"]
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "agentladder"
    assert a["gen_ai.request.model"] == "beta" and a["gen_ai.response.model"] == "beta"
    assert a["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert a["gen_ai.request.max_tokens"] == 3 and a["gen_ai.request.temperature"] == 0.0
    assert a["gen_ai.response.finish_reasons"] == [reply.choices[0].finish_reason]
    assert a["agentladder.team"] == "spans" and ok["status"] == "UNSET" and ok["end_ns"] > ok["start_ns"]
    assert bad["status"] == "ERROR" and bad["attributes"]["error.type"] == "invalid_value"


def test_retry_after_counts_the_rows_that_must_leave_the_window():
    win = Window(3, 30, [100.0, 110.0, 120.0], [(100.0, 10), (110.0, 10), (120.0, 10)])
    assert retry_after(win, rpm=4, tpm=None, inflight=0, now=130.0) is None
    assert retry_after(win, rpm=3, tpm=None, inflight=0, now=130.0) == 30.0
    assert retry_after(win, rpm=2, tpm=None, inflight=0, now=130.0) == 40.0
    assert retry_after(win, rpm=3, tpm=None, inflight=1, now=130.0) == 40.0
    assert retry_after(win, rpm=None, tpm=15, inflight=0, now=130.0) == 40.0
    assert retry_after(win, rpm=None, tpm=31, inflight=0, now=130.0) is None


def test_keys_and_usage_from_the_command_line(tmp_path, gateway):
    db = str(tmp_path / "cli.db")
    runner = CliRunner(env={"COLUMNS": "250"})
    made = runner.invoke(app, ["keys", "create", "--team", "pharmacy", "--models", "parser,alpha", "--rpm", "120",
                               "--token-budget", "2000000", "--name", "ci", "--db", db])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[0]
    assert secret.startswith("al-")
    listed = runner.invoke(app, ["keys", "list", "--db", db])
    assert listed.exit_code == 0 and "pharmacy" in listed.stdout and secret not in listed.stdout
    bad = runner.invoke(app, ["keys", "create", "--team", "x", "--rpm", "0", "--db", db])
    assert bad.exit_code == 1 and "--rpm must be a positive number" in bad.output
    twice = runner.invoke(app, ["keys", "create", "--team", "x", "--name", "ci", "--db", db])
    assert twice.exit_code == 1 and "exists already" in twice.output
    assert runner.invoke(app, ["keys", "revoke", "ci", "--db", db]).exit_code == 0
    assert "ci" not in runner.invoke(app, ["keys", "list", "--db", db]).stdout.split()
    unknown = runner.invoke(app, ["keys", "revoke", "nobody", "--db", db])
    assert unknown.exit_code == 1 and "no key 'nobody'" in unknown.output
    # chargeback over the live gateway's store
    gdb = str(gateway.root / "gateway.db")
    secret, _ = _key(gateway, team="chargeback")
    with _client(gateway, secret) as client:
        client.completions.create(model="tiny", prompt="a", max_tokens=2)
    table = runner.invoke(app, ["usage", "--by", "team", "--since", "2020-01-01", "--format", "csv", "--db", gdb])
    assert table.exit_code == 0, table.output
    lines = table.stdout.strip().splitlines()
    assert lines[0].startswith("team,requests,errors,prompt_tokens,completion_tokens,total_tokens")
    assert any(ln.startswith("chargeback,1,0,") for ln in lines)
    for by in ("key", "model", "day"):
        shown = runner.invoke(app, ["usage", "--by", by, "--db", gdb])
        assert shown.exit_code == 0 and "requests" in shown.stdout
    future = runner.invoke(app, ["usage", "--since", "2999-01-01", "--format", "json", "--db", gdb])
    assert future.exit_code == 0 and json.loads(future.stdout) == []
    wrong = runner.invoke(app, ["usage", "--by", "colour", "--db", gdb])
    assert wrong.exit_code == 1 and "--by 'colour'" in wrong.output
    wrong = runner.invoke(app, ["usage", "--since", "yesterday", "--db", gdb])
    assert wrong.exit_code == 1 and "YYYY-MM-DD" in wrong.output
