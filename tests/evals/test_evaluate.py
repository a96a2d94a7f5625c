"""``evaluate`` end to end with scripted models: figures, report files, samples and resuming."""

import json

import pytest

from agentladder.evals import ScriptedProvider, evaluate
from agentladder.tasks import get_task

TASK = get_task("medication-directions")


def _perfect(rows):
    return ScriptedProvider({r.input: TASK.target_text(r) for r in rows}, name="perfect")


@pytest.fixture(scope="module")
def rows():
    return TASK.make("test", 12, seed=5)


def test_perfect_and_broken_models_side_by_side(tmp_path, rows):
    broken = ScriptedProvider(lambda prompt: "I cannot parse prescriptions.", name="broken")
    report = evaluate([_perfect(rows), broken], data=rows, out=tmp_path, progress=False, n_resamples=200)

    perfect, bad = report.models["perfect"], report.models["broken"]
    assert perfect.metrics["exact_match"].value == 1.0 and perfect.metrics["validity"].value == 1.0
    assert perfect.metrics["dangerous_recall"].value in (1.0, None)
    assert perfect.metrics["false_alarm_rate"].value == 0.0
    assert bad.metrics["exact_match"].value == 0.0 and bad.metrics["field_accuracy"].value == 0.0

    data = json.loads((tmp_path / "report.json").read_text())
    assert data["task"] == "medication-directions" and data["rows"] == 12 and data["shots"] == 0
    entry = data["models"]["perfect"]
    for name in ("exact_match", "field_accuracy", "validity", "dangerous_recall", "false_alarm_rate"):
        assert set(entry[name]) >= {"value", "ci", "n"} and len(entry[name]["ci"]) == 2
    assert set(entry["field_accuracy"]["breakdown"]) == set(TASK.fields)
    assert sum(entry["confusion"]["dangerous_flag"].values()) == 12
    assert "not clinical guidance" in data["note"]

    md = (tmp_path / "report.md").read_text()
    assert "| perfect |" in md and "not clinical guidance" in md and "I cannot parse" in md
    for png in ("headline.png", "field_accuracy.png", "dangerous_flag.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"

    samples = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 24
    first = samples[0]
    assert set(first) >= {"model", "id", "input", "target", "output", "parse", "score"}
    assert first["parse"]["valid"] and first["score"]["exact"]


def test_mixed_answers_hand_worked(rows):
    rows = rows[:4]
    answers = {
        rows[0].input: TASK.target_text(rows[0]),                                  # right
        rows[1].input: "Here you go: " + TASK.target_text(rows[1]) + " Thanks!",    # right, prose around
        rows[2].input: json.dumps({**rows[2].target, "drug": "WRONG"}),             # 5 of 6 fields
        rows[3].input: "{not json",                                                 # nothing
    }
    report = evaluate([ScriptedProvider(answers, name="m")], data=rows, progress=False, n_resamples=100)
    m = report.models["m"].metrics
    assert m["exact_match"].value == pytest.approx(2 / 4)
    assert m["validity"].value == pytest.approx(3 / 4)
    assert m["field_accuracy"].value == pytest.approx((6 + 6 + 5 + 0) / 24)


def test_killed_evaluation_resumes_without_redoing_rows(tmp_path, rows):
    answers = {r.input: TASK.target_text(r) for r in rows}
    seen = []

    def dies_after_eight(prompt):
        if len(seen) == 8:
            raise KeyboardInterrupt
        seen.append(prompt[-1].content)
        return answers[prompt[-1].content]

    flaky = ScriptedProvider(dies_after_eight, name="m")
    flaky.batch_size = 1  # chunks of 4 rows: two chunks are stored before the kill
    with pytest.raises(KeyboardInterrupt):
        evaluate([flaky], data=rows, out=tmp_path, progress=False)
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 8
    with (tmp_path / "samples.jsonl").open("a") as fh:
        fh.write('{"model": "m", "id": "half a line')  # a write cut off by the kill

    again = ScriptedProvider(answers, name="m")
    report = evaluate([again], data=rows, out=tmp_path, progress=False)
    assert len(again.calls) == 4, "only the rows not stored before are generated"
    assert report.models["m"].metrics["exact_match"].value == 1.0
    assert report.models["m"].generated == 4
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 12

    # Other shots change the prompt, so nothing is reused.
    third = ScriptedProvider(answers, name="m")
    evaluate([third], data=rows, out=tmp_path, shots=2, progress=False)
    assert len(third.calls) == 12 and len(third.calls[0]) == 1 + 2 * 2 + 1


def test_few_shot_examples_come_from_train_and_are_shared(rows):
    script = ScriptedProvider(lambda prompt: "{}", name="m")
    report = evaluate([script], data=rows[:3], shots=3, progress=False)
    assert all(i.startswith("rx-train-") for i in report.shot_ids)
    evaluated = {r.input for r in rows[:3]}
    for prompt in script.calls:
        shown = [m.content for m in prompt[1:-1] if m.role == "user"]
        assert len(shown) == 3 and not set(shown) & evaluated
    assert all(p[:-1] == script.calls[0][:-1] for p in script.calls)


def test_default_data_is_the_generated_test_split():
    report = evaluate([ScriptedProvider(lambda p: "{}", name="m")], limit=5, progress=False)
    assert report.rows == 5 and report.data.startswith("generated test split")
    assert [r["id"] for r in report.models["m"].records] == [f"rx-test-{i:06d}" for i in range(1, 6)]


def test_judge_and_win_rate_in_evaluate(rows):
    rows = rows[:3]

    def judge_fn(prompt):
        text = prompt[1].content
        if "Answer A:" in text:  # pairwise: prefer the answer that holds valid JSON
            a = text.split("Answer A:")[1].split("Answer B:")[0]
            return '{"winner": "A"}' if "{" in a else '{"winner": "B"}'
        return '{"score": 5}' if "drug" in text.split("Answer to grade:")[1] else "malformed"

    report = evaluate([_perfect(rows)], data=rows, judge=ScriptedProvider(judge_fn, name="judge"),
                      baseline=ScriptedProvider(lambda p: "no idea", name="base"), progress=False, n_resamples=100)
    perfect, base = report.models["perfect"], report.models["base"]
    assert perfect.metrics["judge_score"].value == 1.0 and perfect.notes["judge_unscored"] == 0
    assert base.metrics["judge_score"].value is None and base.notes["judge_unscored"] == 3
    assert perfect.metrics["win_rate"].value == 1.0 and perfect.notes["position_consistency"] == 1.0
    assert "win_rate" not in base.metrics
    with pytest.raises(ValueError, match="needs a judge"):
        evaluate([_perfect(rows)], data=rows, baseline="other", progress=False)


def test_semantic_similarity_with_packaged_minilm(rows):
    rows = rows[:2]
    report = evaluate([_perfect(rows), ScriptedProvider(lambda p: "The weather is sunny.", name="off")],
                      data=rows, similarity=True, progress=False, n_resamples=100)
    same = report.models["perfect"].metrics["semantic_similarity"].value
    off = report.models["off"].metrics["semantic_similarity"].value
    assert same == pytest.approx(1.0, abs=1e-4) and off < 0.5


def test_text_task(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"input": "Capital of France?", "target": "Paris"}\n'
                    '{"prompt": "Colour of the sky?", "target": "blue", "system": "Answer in one word."}\n')
    script = ScriptedProvider({"Capital of France?": "The answer is Paris.", "Colour of the sky?": "Blue."}, name="m")
    report = evaluate([script], "text", data=path, progress=False, n_resamples=100)
    m = report.models["m"].metrics
    assert m["exact_match"].value == 0.5  # "blue." normalises to "blue"; the first answer has extra words
    assert m["token_f1"].value == pytest.approx((2 * (1 / 3) * 1 / (1 / 3 + 1) + 1) / 2)
    assert script.calls[1][0].content == "Answer in one word."
