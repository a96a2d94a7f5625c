"""``agentladder train dpo``, ``train kto`` and ``data pairs`` as a user runs them."""

import json

from typer.testing import CliRunner

from agentladder.cli import app
from tests.train.test_preference import PAIRS

runner = CliRunner()


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


def test_data_pairs_from_feedback(tmp_path):
    src = tmp_path / "feedback.jsonl"
    src.write_text(json.dumps({"prompt": "q", "completion": "yes", "label": True}) + "\n"
                   + json.dumps({"prompt": "q", "completion": "no", "label": False}) + "\n")
    result = runner.invoke(app, ["data", "pairs", "--feedback", str(src), "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "p.jsonl").read_text())
    assert (row["chosen"][0]["content"], row["rejected"][0]["content"]) == ("yes", "no")
