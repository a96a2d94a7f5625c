"""The command line as a user runs it: training, a kill and a resume, data checks, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from agentladder.cli import app

runner = CliRunner()


def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "agentladder", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_train_sft_killed_then_resumed_matches_an_uninterrupted_run(tmp_path, rows_file):
    args = ["train", "sft", "--model", "tiny", "--data", str(rows_file), "--lora", "--max-steps", "400",
            "--batch-size", "2", "--save-every", "20", "--quiet"]
    whole = _cli(*args, "--out", "whole", cwd=tmp_path)
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    cut = _cli(*args, "--out", "cut", cwd=tmp_path)
    ckpts = tmp_path / "cut" / "checkpoints"
    deadline = time.time() + 120
    while not (ckpts.exists() and any(p.name.startswith("step-") for p in ckpts.iterdir())):
        assert cut.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    cut.send_signal(signal.SIGKILL)
    cut.wait()
    assert not (tmp_path / "cut" / "adapter_model.safetensors").exists()

    again = _cli(*args, "--out", "cut", cwd=tmp_path)  # without --resume an existing run is protected
    assert again.wait(timeout=60) == 1 and "already holds a run" in again.stderr.read()

    resumed = _cli("train", "sft", "--resume", "cut", "--quiet", cwd=tmp_path)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a = load_file(tmp_path / "whole" / "adapter_model.safetensors")
    b = load_file(tmp_path / "cut" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    meta = json.loads((tmp_path / "cut" / "agentladder.json").read_text())
    assert meta["base_model"] == "tiny" and meta["lora"] and meta["steps"] == 400
    steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 401))


def test_trained_folder_loads_as_a_model(tmp_path, rows_file):
    from agentladder.data import Message
    from agentladder.models import generate, load_model

    result = runner.invoke(app, ["train", "sft", "--model", "tiny", "--data", str(rows_file), "--full",
                                 "--out", str(tmp_path / "full"), "--max-steps", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    model, tok = load_model(str(tmp_path / "full"))
    out = generate(model, tok, [[Message(role="user", content="hi")]], max_new_tokens=4)
    assert isinstance(out[0], str)


def test_lora_plus_ratio_from_the_command_line(tmp_path, rows_file):
    base = ["train", "sft", "--model", "tiny", "--data", str(rows_file), "--max-steps", "2", "--quiet"]
    result = runner.invoke(app, [*base, "--lora", "--lora-plus-ratio", "8", "--out", str(tmp_path / "plus")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "plus" / "train_config.json").read_text())["lora_plus_ratio"] == 8.0
    result = runner.invoke(app, [*base, "--full", "--lora-plus-ratio", "8", "--out", str(tmp_path / "full")])
    assert result.exit_code == 1 and "lora_plus_ratio needs LoRA adapters" in result.output
    assert "Traceback" not in result.output


def test_continued_pretraining_on_text_rows(tmp_path):
    data = tmp_path / "corpus.jsonl"
    data.write_text("".join(json.dumps({"text": f"Line {i}: " + "lorem ipsum " * 30}) + "\n" for i in range(6)))
    result = runner.invoke(app, ["train", "sft", "--model", "tiny", "--data", str(data), "--out",
                                 str(tmp_path / "cpt"), "--max-length", "64", "--max-steps", "2", "--quiet",
                                 "--lr", "1e-3"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cpt" / "agentladder.json").read_text())["method"] == "cpt"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"messages": [{"role": "user", "content": "x"}, {"role": "robot", "content": "y"}]}',
         "bad.jsonl:2: messages[1].role: Input should be"),
        ('{"prompt": "x", "completion": 7}', "bad.jsonl:2: completion must be a string or a list of messages"),
    ],
)
def test_bad_data_is_one_clear_line(tmp_path, content, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n' + content + "\n")
    for args in (["data", "check", str(bad)],
                 ["train", "sft", "--model", "tiny", "--data", str(bad), "--out", str(tmp_path / "r")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert message in result.output and "Traceback" not in result.output


def test_unknown_model_is_a_clear_error(tmp_path, rows_file):
    result = runner.invoke(app, ["train", "sft", "--model", "no-such-model", "--data", str(rows_file),
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "no model 'no-such-model'" in result.output


def test_distill_writes_conversations_and_resumes(tmp_path, rows_file):
    out = tmp_path / "distilled.jsonl"
    partial = tmp_path / "distilled.jsonl.partial"
    partial.write_text(json.dumps({"id": "a", "messages": [{"role": "user", "content": "Say hi"},
                                                           {"role": "assistant", "content": "kept"}]}) + "\n")
    result = runner.invoke(app, ["data", "distill", "--teacher", "tiny", "--prompts", str(rows_file), "--out",
                                 str(out), "--max-new-tokens", "4", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c", "d", "e", "f"]
    assert rows[0]["messages"][-1]["content"] == "kept"  # the finished part was not redone
    assert rows[2]["messages"][-2]["content"] == "And Italy?"  # the prompt stops before the last answer
    assert all(r["messages"][-1]["role"] == "assistant" for r in rows) and not partial.exists()


def test_an_endpoint_that_refuses_is_one_clear_line_not_a_traceback(tmp_path):
    import http.server
    import threading

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"error": "bad key"}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        result = runner.invoke(app, ["data", "pairs", "--model", f"openai:some-model@{url}", "--task",
                                     "medication-directions", "--n", "2", "--out", str(tmp_path / "p.jsonl"),
                                     "--quiet"])
    finally:
        server.shutdown()
    assert result.exit_code == 1
    assert "HTTP 401" in result.output and "bad key" in result.output
    assert "Traceback" not in result.output
