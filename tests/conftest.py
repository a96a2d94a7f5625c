import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import torch

from agentladder.models.tiny import tiny_model, tiny_tokenizer


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    # Two threads match the CI machine; results must not depend on leftovers.
    torch.set_num_threads(2)


@pytest.fixture
def tok():
    return tiny_tokenizer()


@pytest.fixture
def model(tok):
    return tiny_model(tokenizer=tok)


CONVERSATIONS = [
    {"id": "a", "messages": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi there!"}]},
    {"id": "b", "prompt": "What is 2+2?", "completion": "4"},
    {
        "id": "c",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And Italy?"},
            {"role": "assistant", "content": "Rome, of course."},
        ],
    },
    {
        "id": "d",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [{"id": "1", "name": "weather", "arguments": {"city": "Paris"}}]},
            {"role": "tool", "tool_call_id": "1", "name": "weather", "content": "sunny, 21C"},
            {"role": "assistant", "content": "It is sunny and 21C."},
        ],
    },
    {
        "id": "e",
        "messages": [
            {"role": "user", "content": "Draft a reply"},
            {"role": "assistant", "content": "A bad first draft", "trainable": False},
            {"role": "user", "content": "Better please"},
            {"role": "assistant", "content": "A much better draft."},
        ],
    },
    {"id": "f", "messages": [{"role": "user", "content": "Count to five"}, {"role": "assistant", "content": "1 2 3 4 5"}]},
]


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in CONVERSATIONS))
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A tiny random BERT sentence encoder whose vocabulary covers the pharmacy knowledge base."""
    from agentladder.models.tiny import write_tiny_encoder
    from agentladder.tasks.retrieval import build_corpus, generate_queries

    texts = [r["text"] for r in build_corpus()]
    texts += [q["text"] for split, n in (("train", 3000), ("validation", 300), ("test", 500))
              for q in generate_queries(split, n)]
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder") / "model", texts)


# -- a throwaway PostgreSQL server (the gateway's store, the pgvector index) -------------------------------

def _pg_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        pytest.fail("PostgreSQL is not installed: `bash setup.sh --dev` installs Debian's postgresql")
    return Path(candidates[-1]).parent


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster on a free loopback port (as the postgres user when run as root)."""
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="agentladder-pg-"))
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(root, "postgres")

    def run(*cmd: str) -> None:
        full = ["runuser", "-u", "postgres", "--", *cmd] if as_root else list(cmd)
        done = subprocess.run(full, capture_output=True, text=True)
        assert done.returncode == 0, f"{cmd[0]} failed: {done.stdout}{done.stderr}"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh database on the throwaway cluster, for one test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server + "/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"
