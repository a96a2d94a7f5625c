import json

import pytest
from typer.testing import CliRunner

from agentladder.agents import Agent, Runtime, ScriptedChat, export_traces, parse_where
from agentladder.cli import app
from agentladder.data.io import read_jsonl
from agentladder.data.schema import Conversation, PreferencePair, RLPrompt


@pytest.fixture
def db(tmp_path):
    """Three answers to one prompt (scored 1, 0, 0.5), one invalid-then-valid run, one other prompt."""
    path = tmp_path / "agents.db"
    rt = Runtime(path)
    parser = Agent(ScriptedChat(['{"a": 1}', '{"a": 2}', '{"a": 3}', "oops", '{"a": 4}', '{"a": 5}']),
                   system="Parse.", name="parser")
    ids = [parser.run("rx 1", runtime=rt).trajectory_id for _ in range(3)]
    from pydantic import BaseModel

    class A(BaseModel):
        a: int

    typed = Agent(ScriptedChat(["oops", '{"a": 4}']), system="Parse.", output=A, name="typed")
    ids.append(typed.run("rx 2", runtime=rt).trajectory_id)
    ids.append(parser.run("rx 3", runtime=rt).trajectory_id)
    for tid, score in zip(ids, [1.0, 0.0, 0.5, 1.0], strict=False):
        rt.store.add_rewards(tid, {"score": score})
    conv = rt.store.trajectory(ids[0])
    rt.store.add_rewards(ids[0], {"exact": 1})
    assert conv.rewards == {"score": 1.0}
    rt.shutdown()
    return path, ids


def test_where_parses_and_refuses_clearly():
    clauses = parse_where("score >= 1 and agent == 'parser' AND metadata.status != invalid")
    assert [(c.field, c.op, c.value) for c in clauses] == [
        ("score", ">=", 1.0), ("agent", "==", "parser"), ("metadata.status", "!=", "invalid")]
    with pytest.raises(ValueError, match="cannot read 'score >>> 1'"):
        parse_where("score >>> 1")


def test_export_sft(db, tmp_path):
    path, ids = db
    counts = export_traces(path, "sft", tmp_path / "sft.jsonl", where="score >= 1")
    assert counts == {"matched": 2, "written": 2}
    rows = read_jsonl(tmp_path / "sft.jsonl", Conversation)
    assert [r.id for r in rows] == [ids[0], ids[3]]
    first = rows[0]
    assert [m.role for m in first.messages] == ["system", "user", "assistant"]
    assert first.rewards == {"score": 1.0, "exact": 1.0}
    # the invalid attempt travels along, marked untrainable; the valid answer is trained
    typed = rows[1]
    assert [(m.role, m.is_trained) for m in typed.messages][-3:] == [
        ("assistant", False), ("user", False), ("assistant", True)]


def test_export_preference_pairs(db, tmp_path):
    path, ids = db
    counts = export_traces(path, "preference", tmp_path / "pairs.jsonl", where="agent == parser")
    assert counts == {"matched": 4, "written": 2}
    pairs = read_jsonl(tmp_path / "pairs.jsonl", PreferencePair)
    assert [(p.metadata["chosen"], p.metadata["rejected"]) for p in pairs] == [(ids[0], ids[2]), (ids[0], ids[1])]
    assert [m.content for m in pairs[0].prompt] == ["Parse.", "rx 1"]
    assert pairs[0].chosen[0].content == '{"a": 1}' and pairs[0].rejected[0].content == '{"a": 3}'


def test_export_rl_prompts(db, tmp_path):
    path, _ = db
    assert export_traces(path, "rl", tmp_path / "rl.jsonl")["written"] == 3  # three distinct prompts
    prompts = read_jsonl(tmp_path / "rl.jsonl", RLPrompt)
    assert [p.prompt[-1].content for p in prompts] == ["rx 1", "rx 2", "rx 3"]


def test_cli(db, tmp_path):
    path, ids = db
    runner = CliRunner(env={"COLUMNS": "250"})
    out = runner.invoke(app, ["traces", "list", "--db", str(path), "--where", "score >= 0.5"])
    assert out.exit_code == 0, out.output
    assert ids[0] in out.output and ids[2] in out.output and ids[1] not in out.output
    out = runner.invoke(app, ["traces", "show", ids[3], "--db", str(path)])
    assert out.exit_code == 0 and "trained" in out.output and "chat scripted" in out.output
    target = tmp_path / "rows.jsonl"
    out = runner.invoke(app, ["traces", "export", "--to", "sft", "--where", "score >= 1", "--out", str(target),
                              "--db", str(path)])
    assert out.exit_code == 0, out.output
    assert len(target.read_text().splitlines()) == 2
    bad = runner.invoke(app, ["traces", "export", "--to", "dpo", "--out", str(target), "--db", str(path)])
    assert bad.exit_code == 1 and "--to must be one of sft, preference, rl" in bad.output
    missing = runner.invoke(app, ["traces", "list", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "no trace store" in missing.output
    assert json.loads(target.read_text().splitlines()[0])["id"] == ids[0]
