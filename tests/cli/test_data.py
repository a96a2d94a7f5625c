"""``agentladder data make|check|pairs|distill`` as a user runs them."""

import json

import pytest
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


def test_data_make_the_shifted_split(tmp_path):
    from agentladder.tasks.medication.shifted import RESERVED

    out = tmp_path / "shifted.jsonl"
    result = runner.invoke(app, ["data", "make", "medication-directions", "--split", "shifted", "--n", "20",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = get_task("medication-directions").load(out)  # the task reads and scores them like any split
    assert len(rows) == 20 and all(r.id.startswith("rx-shifted-") for r in rows)
    assert all(any(form in r.input.lower() for form in RESERVED) for r in rows)


def test_data_make_errors_are_one_line(tmp_path):
    bad_split = runner.invoke(app, ["data", "make", "medication-directions", "--split", "dev", "--out", str(tmp_path / "x")])
    assert bad_split.exit_code == 1 and "unknown split 'dev'" in bad_split.output
    bad_task = runner.invoke(app, ["data", "make", "nosuchtask", "--out", str(tmp_path / "x")])
    assert bad_task.exit_code == 1 and "no task 'nosuchtask'" in bad_task.output
    no_generator = runner.invoke(app, ["data", "make", "text", "--out", str(tmp_path / "x")])
    assert no_generator.exit_code == 1 and "has no data generator" in no_generator.output


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


def test_data_pairs_from_feedback(tmp_path):
    src = tmp_path / "feedback.jsonl"
    src.write_text(json.dumps({"prompt": "q", "completion": "yes", "label": True}) + "\n"
                   + json.dumps({"prompt": "q", "completion": "no", "label": False}) + "\n")
    result = runner.invoke(app, ["data", "pairs", "--feedback", str(src), "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "p.jsonl").read_text())
    assert (row["chosen"][0]["content"], row["rejected"][0]["content"]) == ("yes", "no")
