"""The client examples of docs/serve.md run against a live server (the tiny model under the docs' names)."""

import re
from pathlib import Path

import openai
import pytest

from agentladder.serve import load_state
from agentladder.serve.gateway import GatewayHooks, create_key, open_db, report
from tests.serve.conftest import LiveServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "serve.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
DOC_URL = "http://127.0.0.1:8000/v1"
STRANDS_PLAIN = 'print(agent("ibuprofen 200 mg as needed"))'


@pytest.fixture(scope="module")
def docs_server(adapters):
    state = load_state("tiny", served_model_name="smollm2-135m", adapters={"parser": adapters["alpha"]},
                       embeddings="all-MiniLM-L6-v2", default_max_tokens=32)
    with LiveServer(state) as live:
        yield live


def _client_blocks():
    """The examples run on the tiny model; the Strands one runs on SmolLM2 (tests/serve/test_real_model.py):
    Strands raises when an answer reaches max_tokens, as the random tiny model's do."""
    return [b for b in BLOCKS if DOC_URL in b and "AGENTLADDER_KEY" not in b and STRANDS_PLAIN not in b]


def strands_block() -> str:
    (block,) = [b for b in BLOCKS if STRANDS_PLAIN in b]
    return block


def test_the_doc_has_client_examples():
    assert len(_client_blocks()) == 2 and strands_block() and any("class KeyCheck" in b for b in BLOCKS)


@pytest.mark.parametrize("index", range(2))
def test_client_example_runs(docs_server, index, capsys):
    code = _client_blocks()[index].replace(DOC_URL, docs_server.base_url)
    exec(compile(code, f"docs/serve.md example {index + 1}", "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.strip()


def test_gateway_example_guards_the_server(capsys):
    (block,) = [b for b in BLOCKS if "class KeyCheck" in b]
    scope: dict = {}
    exec(compile(block, "docs/serve.md gateway example", "exec"), scope)
    state = load_state("tiny", hooks=scope["KeyCheck"](), default_max_tokens=8)
    with LiveServer(state) as live:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=live.base_url, api_key="wrong", max_retries=0).models.list()
        good = openai.OpenAI(base_url=live.base_url, api_key="secret", max_retries=0)
        good.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert "secret" in capsys.readouterr().out


def test_gateway_client_example_runs_with_a_key(adapters, tmp_path, monkeypatch, capsys):
    (block,) = [b for b in BLOCKS if "AGENTLADDER_KEY" in b]
    hooks = GatewayHooks(open_db(tmp_path / "gateway.db"))
    secret, rec = create_key(hooks.db, "pharmacy", models=["parser"])
    state = load_state("tiny", adapters={"parser": adapters["alpha"]}, hooks=hooks, default_max_tokens=32)
    with LiveServer(state) as live:
        monkeypatch.setenv("AGENTLADDER_KEY", "al-wrong")
        with pytest.raises(openai.AuthenticationError):
            exec(compile(block.replace(DOC_URL, live.base_url), "docs/serve.md gateway", "exec"), {})
        monkeypatch.setenv("AGENTLADDER_KEY", secret)
        exec(compile(block.replace(DOC_URL, live.base_url), "docs/serve.md gateway", "exec"), {})
    assert capsys.readouterr().out.strip()
    assert report(hooks.db, "team")[0]["requests"] == 1, "the refused call (401) is not charged"
