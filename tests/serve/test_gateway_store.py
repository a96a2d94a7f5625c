"""The gateway's store for real: no usage row lost when a server is killed under load (a subprocess, SIGKILL),
keys and usage shared through a real PostgreSQL server by two server processes, generated bodies with random keys."""

import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from agentladder.agents.store import Store
from agentladder.cli import app
from agentladder.serve import load_state
from agentladder.serve.gateway import GatewayHooks, create_key, open_db, revoke_key
from agentladder.serve.gateway.usage import report, rows
from tests.serve.conftest import LiveServer
from tests.serve.test_faults import _bodies, _check

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db: str, tmp_path: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "agentladder", "serve", "--model", "tiny", "--port", str(port),
                             "--db", db, "--traces-db", str(tmp_path / "traces.db"), "--max-batch", "8",
                             "--log-level", "warning"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError(proc.stdout.read().decode())
        time.sleep(0.2)


def test_no_usage_row_is_lost_when_the_server_is_killed_under_load(tmp_path):
    db = str(tmp_path / "gateway.db")
    secret, rec = create_key(open_db(db), "load")
    proc, url = _start(db, tmp_path)
    answered: list[str] = []
    stop = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {secret}"}) as http:
            while not stop.is_set():
                body = {"model": "tiny", "prompt": "count", "max_tokens": rng.randint(1, 6),
                        "stream": rng.random() < 0.3}
                try:
                    r = http.post(url + "/v1/completions", json=body)
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    ident = r.json()["id"] if not body["stream"] else r.text.split('"id": "', 1)[1].split('"')[0]
                    if body["stream"] and not r.text.rstrip().endswith("data: [DONE]"):
                        continue  # a stream the kill cut short was not answered
                    answered.append(ident)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        deadline = time.time() + 120
        while len(answered) < 40 and time.time() < deadline:
            time.sleep(0.05)
        proc.kill()  # SIGKILL, requests in flight
        assert proc.wait(30) == -9
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        if proc.poll() is None:
            proc.kill()
    assert len(answered) >= 40
    proc, url = _start(db, tmp_path)  # restart on the same store
    try:
        stored = {r["request_id"] for r in rows(open_db(db)) if r["key_id"] == rec.id}
        missing = set(answered) - stored
        assert not missing, f"{len(missing)} of {len(answered)} answered requests have no usage row"
        again = httpx.post(url + "/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 2},
                           headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        assert again.status_code == 200
        assert again.json()["id"] in {r["request_id"] for r in rows(open_db(db))}
    finally:
        proc.terminate()
        proc.wait(60)


def test_two_server_processes_share_keys_limits_and_usage_through_postgresql(postgres_url, tmp_path):
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--team", "pharmacy", "--models", "tiny", "--rpm", "4",
                               "--db", postgres_url])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[0]
    hooks = GatewayHooks(open_db(postgres_url))
    with LiveServer(load_state("tiny", hooks=hooks, default_max_tokens=4)) as here:
        proc, there = _start(postgres_url, tmp_path)
        try:
            headers = {"Authorization": f"Bearer {secret}"}
            body = {"model": "tiny", "prompt": "x", "max_tokens": 2}
            codes = [httpx.post(url + "/v1/completions", json=body, headers=headers, timeout=30).status_code
                     for url in (here.url, there, here.url, there, here.url, there)]
            assert codes == [200, 200, 200, 200, 429, 429], "one rpm limit across both processes"
            other = httpx.post(there + "/v1/completions", json={**body, "model": "alpha"}, headers=headers)
            assert other.status_code == 403
            rec = revoke_key(open_db(postgres_url), secret[:10])
            refused = httpx.get(there + "/v1/models", headers=headers)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked_api_key"
        finally:
            proc.terminate()
            proc.wait(60)
    db = open_db(postgres_url)
    mine = [r for r in rows(db) if r["key_id"] == rec.id]
    assert sorted(r["status"] for r in mine) == [200, 200, 200, 200, 403, 429, 429]
    (team,) = report(db, "team")
    assert team["requests"] == 7 and team["errors"] == 3 and team["total_tokens"] > 0
    csv = runner.invoke(app, ["usage", "--by", "team", "--format", "csv", "--db", postgres_url])
    assert csv.exit_code == 0 and csv.stdout.splitlines()[1].startswith("pharmacy,7,3,")
    bad = runner.invoke(app, ["keys", "list", "--db", "postgresql://postgres@127.0.0.1:1/none"])
    assert bad.exit_code == 1 and "cannot connect" in bad.output


def test_generated_bodies_with_random_keys_each_leave_one_usage_row(gateway_fuzz):
    live, keys = gateway_fuzz
    sent = {k: 0 for k in keys}
    rng = random.Random(7)
    with httpx.Client(timeout=60) as http:
        for path, raw in _bodies(1000, seed=11):
            who = rng.choice([*keys, None, "al-not-a-key", "revoked"])
            headers = {"content-type": "application/json"}
            if who is not None:
                headers["Authorization"] = f"Bearer {keys.get(who, who) if who != 'revoked' else live.revoked}"
            response = http.post(live.url + path, content=raw, headers=headers)
            _check(response)
            if who in keys:
                sent[who] += 1
            else:
                assert response.status_code == 401
        assert http.get(live.url + "/health").json()["running"] == 0
    stored = rows(live.hooks.db)
    for name in keys:
        rec_id = live.ids[name]
        assert sum(1 for r in stored if r["key_id"] == rec_id) == sent[name] > 50


@pytest.fixture
def gateway_fuzz(tmp_path, adapters):
    hooks = GatewayHooks(open_db(tmp_path / "g.db"), store=Store(tmp_path / "t.db"))
    keys, ids = {}, {}
    for name, kw in {"all": {"record": True}, "alpha": {"models": ["alpha"]}}.items():
        keys[name], rec = create_key(hooks.db, "fuzz", **kw)
        ids[name] = rec.id
    revoked, rec = create_key(hooks.db, "fuzz")
    revoke_key(hooks.db, rec.id)
    state = load_state("tiny", adapters=adapters, embeddings="all-MiniLM-L6-v2", hooks=hooks, max_batch=16,
                       default_max_tokens=8)
    with LiveServer(state) as live:
        live.hooks, live.ids, live.revoked = hooks, ids, revoked
        yield live, keys
    hooks.close()
