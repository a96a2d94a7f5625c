import json

import pytest

from agentladder.data import (
    Conversation,
    DataError,
    MarkedResponse,
    PreferencePair,
    RLPrompt,
    TextRow,
    from_hf_dataset,
    read_jsonl,
    to_hf_dataset,
    write_jsonl,
)
from agentladder.data.io import append_json_lines, keep_steps, sniff_sft_schema, whole_lines
from agentladder.data.rng import resume_appended


def test_prompt_completion_becomes_messages():
    c = Conversation.model_validate({"prompt": "hi", "completion": "hello"})
    assert [m.role for m in c.messages] == ["user", "assistant"]
    assert [m.is_trained for m in c.messages] == [False, True]


def test_trainable_only_on_assistant():
    with pytest.raises(ValueError, match="only assistant turns can be trainable"):
        Conversation.model_validate({"messages": [{"role": "user", "content": "x", "trainable": True}]})


def test_tool_call_arguments_as_json_string_and_openai_shape():
    m = Conversation.model_validate(
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]}]}
    ).messages[1]
    assert m.tool_calls[0].name == "f" and m.tool_calls[0].arguments == {"a": 1}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"messages": [{"role": "usr", "content": "hi"}]}', "messages[0].role"),
        ('{"messages": [{"role": "user"}]}', "messages[0]: a message needs content or tool_calls"),
        ('{"messages": []}', "messages: List should have at least 1 item"),
        ('{"messages": [{"role": "user", "content": "x"}], "colour": 1}', "colour: Extra inputs"),
        ('{"messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
        ("[1, 2]", "expected a JSON object"),
        ('{"messages": [', "invalid JSON"),
    ],
)
def test_bad_jsonl_names_file_line_and_field(tmp_path, line, expected):
    path = tmp_path / "train.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    path.write_text(good + "\n\n" + good + "\n" + line + "\n")
    with pytest.raises(DataError) as info:
        read_jsonl(path, Conversation)
    assert str(info.value).startswith(f"{path}:4: ")
    assert expected in str(info.value)
    assert info.value.line == 4


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_jsonl(tmp_path / "nope.jsonl", Conversation)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        read_jsonl(tmp_path / "empty.jsonl", Conversation)


def test_round_trip_jsonl_and_hf_dataset(tmp_path):
    rows = [
        PreferencePair.model_validate({"id": "p", "prompt": "q", "chosen": "good", "rejected": "bad"}),
        PreferencePair.model_validate({"prompt": "q2", "chosen": "x", "rejected": "y", "metadata": {"s": 1}}),
    ]
    path = tmp_path / "pairs.jsonl"
    assert write_jsonl(path, rows) == 2
    assert read_jsonl(path, PreferencePair) == rows
    assert from_hf_dataset(to_hf_dataset(rows), PreferencePair) == rows


def test_other_row_types():
    assert RLPrompt.model_validate({"prompt": "2+2?", "target": 4}).prompt[0].role == "user"
    assert MarkedResponse.model_validate({"prompt": "q", "completion": "a", "label": False}).label is False
    with pytest.raises(ValueError):
        TextRow.model_validate({"text": ""})


def test_sniff_text_rows(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"text": "raw corpus"}\n')
    (tmp_path / "c.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    assert sniff_sft_schema(tmp_path / "t.jsonl") is TextRow
    assert sniff_sft_schema(tmp_path / "c.jsonl") is Conversation


def test_write_is_atomic(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(TypeError):
        write_jsonl(path, [{"x": 1}, {"x": object()}])
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_a_file_a_killed_run_appended_to_reads_back_its_whole_lines(tmp_path):
    path = tmp_path / "run.jsonl.partial"
    assert whole_lines(path) == []  # no file yet: nothing done
    append_json_lines(path, [{"id": "a", "text": "é"}, {"id": "b"}])
    assert path.read_text(encoding="utf-8") == '{"id": "a", "text": "é"}\n{"id": "b"}\n'
    # A kill mid-write leaves the last line unended, here cut inside a two-byte character.
    with path.open("ab") as fh:
        fh.write('{"id": "c", "text": "é'.encode()[:-1])
    assert [n for n, _ in whole_lines(path)] == [1, 2]
    assert path.read_text(encoding="utf-8").endswith('{"id": "b"}\n')  # the cut line is gone from the file
    append_json_lines(path, [{"id": "c"}])  # so the next append starts a line of its own
    assert [json.loads(t)["id"] for _, t in whole_lines(path)] == ["a", "b", "c"]
    # A whole line that is not JSON is not a cut write: reading it as rows names the file and line.
    with path.open("a", encoding="utf-8") as fh:
        fh.write("{oops\n")
    with pytest.raises(DataError, match=r"run.jsonl.partial:4: invalid JSON"):
        resume_appended(path, tmp_path / "no-marks")


def test_a_step_log_is_cut_back_to_the_step_a_run_resumes_from(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert keep_steps(path, 3) == [] and not path.exists()
    path.write_text('{"step": 1, "loss": 2.5}\n{"step": 2, "loss": 2.0}\n{"note": "no step"}\n'
                    '{"step": 3, "loss": 1.5}\n{"step": 4, "lo')
    assert keep_steps(path, 2) == [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 2.0}]
    assert path.read_text() == '{"step": 1, "loss": 2.5}\n{"step": 2, "loss": 2.0}\n'
