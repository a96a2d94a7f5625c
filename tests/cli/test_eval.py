"""``agentladder eval`` as a user runs it."""

import json

from typer.testing import CliRunner

from agentladder.cli import app

runner = CliRunner()


def test_eval_tiny_models_side_by_side(tmp_path):
    data = tmp_path / "test.jsonl"
    assert runner.invoke(app, ["data", "make", "medication-directions", "--split", "test", "--n", "2",
                               "--out", str(data)]).exit_code == 0
    out = tmp_path / "report"
    result = runner.invoke(app, ["eval", "--model", "tiny", "--model", "tiny", "--data", str(data), "--shots", "1",
                                 "--max-new-tokens", "3", "--out", str(out), "--quiet", "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    assert "exact_match" in result.output or "exact_m" in result.output
    report = json.loads((out / "report.json").read_text())
    assert list(report["models"]) == ["tiny", "tiny (2)"] and report["shots"] == 1
    assert report["models"]["tiny"]["speed"]["rows_generated"] == 2
    assert len((out / "samples.jsonl").read_text().splitlines()) == 4
