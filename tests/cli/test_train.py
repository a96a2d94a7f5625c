"""``agentladder train sft|dpo|kto`` as a user runs them: training, a kill and a resume, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file
from typer.testing import CliRunner

from agentladder.cli import app
from tests.train.test_preference import PAIRS

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


def test_unknown_model_is_a_clear_error(tmp_path, rows_file):
    result = runner.invoke(app, ["train", "sft", "--model", "no-such-model", "--data", str(rows_file),
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "no model 'no-such-model'" in result.output


def test_train_dpo_then_resume_a_finished_run_and_train_kto(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    common = ["--model", "tiny", "--data", str(pairs), "--max-steps", "2", "--batch-size", "2", "--quiet"]
    result = runner.invoke(app, ["train", "dpo", *common, "--loss", "ipo", "--beta", "0.5", "--out",
                                 str(tmp_path / "dpo")])
    assert result.exit_code == 0, result.output
    assert "reward accuracy" in result.output
    config = json.loads((tmp_path / "dpo" / "train_config.json").read_text())
    assert (config["loss"], config["beta"], config["learning_rate"]) == ("ipo", 0.5, 1e-6)
    lines = (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()
    assert {"reward_accuracy", "margin", "logp_chosen"} <= set(json.loads(lines[0]))

    again = runner.invoke(app, ["train", "dpo", "--resume", str(tmp_path / "dpo"), "--quiet"])
    assert again.exit_code == 0, again.output

    kto = runner.invoke(app, ["train", "kto", *common, "--lora", "--out", str(tmp_path / "kto")])
    assert kto.exit_code == 0, kto.output
    assert json.loads((tmp_path / "kto" / "agentladder.json").read_text())["reference"] == "adapters"


def test_errors_are_one_line(tmp_path):
    result = runner.invoke(app, ["train", "dpo", "--model", "tiny", "--data", str(tmp_path / "none.jsonl"),
                                 "--out", str(tmp_path / "x"), "--quiet"])
    assert result.exit_code == 1 and "none.jsonl: file not found" in result.output
    result = runner.invoke(app, ["train", "dpo", "--loss", "kto", "--data", "x", "--out", "y"])
    assert result.exit_code == 1 and "train kto" in result.output
    result = runner.invoke(app, ["data", "pairs", "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 1 and "--feedback" in result.output


def test_the_old_rpo_alpha_option_names_the_new_loss(tmp_path):
    res = runner.invoke(app, ["train", "dpo", "--data", "p.jsonl", "--out", str(tmp_path / "o"), "--loss", "rpo",
                              "--rpo-alpha", "1.0"])
    assert res.exit_code == 1 and "DPO plus NLL" in res.output and "--loss dpo_nll" in res.output
    assert "--nll-alpha" in res.output
