"""``agentladder data make`` and ``agentladder eval`` as a user runs them."""

import json

from typer.testing import CliRunner

from agentladder.cli import app
from agentladder.data import Conversation, read_jsonl
from agentladder.tasks import get_task

runner = CliRunner()


def test_data_make_rows_and_sft(tmp_path):
    rows = tmp_path / "train.jsonl"
    result = runner.invoke(app, ["data", "make", "medication-directions", "--split", "train", "--n", "30",
                                 "--seed", "2", "--out", str(rows)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in rows.read_text().splitlines()]
    assert len(lines) == 30 and set(lines[0]) == {"id", "text", "target"}

    sft = tmp_path / "sft.jsonl"
    result = runner.invoke(app, ["data", "make", "medication-directions", "--split", "train", "--n", "30",
                                 "--seed", "2", "--format", "sft", "--out", str(sft)])
    assert result.exit_code == 0, result.output
    convs = read_jsonl(sft, Conversation)  # what `agentladder train sft` reads
    task = get_task("medication-directions")
    first = task.load(rows)[0]
    assert convs[0].messages[:-1] == task.prompt(first)
    assert json.loads(convs[0].messages[-1].content) == lines[0]["target"]

    brief = tmp_path / "brief.jsonl"
    result = runner.invoke(app, ["data", "make", "medication-directions@brief", "--n", "30", "--format", "sft",
                                 "--balance", "doses_per_day", "--out", str(brief)])
    assert result.exit_code == 0, result.output
    convs = read_jsonl(brief, Conversation)
    assert len(convs) == 30 and {c.messages[0].content for c in convs} == {get_task("medication-directions@brief").prompt(first)[0].content}
    bad_field = runner.invoke(app, ["data", "make", "medication-directions", "--n", "3", "--balance", "dose",
                                    "--out", str(tmp_path / "x")])
    assert bad_field.exit_code == 1 and "cannot balance on 'dose'" in bad_field.output


def test_data_make_errors_are_one_line(tmp_path):
    bad_split = runner.invoke(app, ["data", "make", "medication-directions", "--split", "dev", "--out", str(tmp_path / "x")])
    assert bad_split.exit_code == 1 and "unknown split 'dev'" in bad_split.output
    bad_task = runner.invoke(app, ["data", "make", "nosuchtask", "--out", str(tmp_path / "x")])
    assert bad_task.exit_code == 1 and "no task 'nosuchtask'" in bad_task.output
    no_generator = runner.invoke(app, ["data", "make", "text", "--out", str(tmp_path / "x")])
    assert no_generator.exit_code == 1 and "has no data generator" in no_generator.output


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
