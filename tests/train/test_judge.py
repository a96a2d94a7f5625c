"""Tuned judges: the SFT rows are the judge's own prompt and a verdict it parses, agreement figures, rubric
files that do not parse, a run on the tiny model, the judge reward reading a tuned judge's rubric."""

import json

import numpy as np
import pytest

from agentladder.data.feedback import load_rubric
from agentladder.data.schema import GradedResponse
from agentladder.errors import DataError
from agentladder.rewards import JudgeReward, parse_verdict
from agentladder.rewards.agreement import agreement
from agentladder.rewards.judge import read_judge
from agentladder.train.judge import judge_conversation, train_judge

RUBRIC = "Answers in lower case.\n5: all lower case\n4: mostly\n3: mixed\n2: mostly upper\n1: all upper case\n"


def test_a_judge_row_is_the_judge_prompt_answered_by_a_parsable_verdict():
    row = GradedResponse(prompt="How tight is an M8 bolt?", completion="About 25 Nm.", grade=4,
                         reasons="right figure, no source", metadata={"reference": "25 Nm dry"})
    conv = judge_conversation(row, "Correct and cited.", (1, 5))
    system, user, verdict = conv.messages
    assert system.role == "system" and "scale from 1 to 5" in system.content
    assert "Rubric: Correct and cited." in user.content and "Reference answer:\n25 Nm dry" in user.content
    assert "Answer to grade:\nAbout 25 Nm." in user.content
    assert parse_verdict(verdict.content) == parse_verdict('{"score": 4, "reason": "right figure, no source"}')
    assert parse_verdict(verdict.content).score == 4


def test_agreement_by_hand_and_against_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    ref = [1, 2, 3, 4, 5, 5]
    pred = [1, 3, 3, None, 4, 5]
    f = agreement(pred, ref)
    assert f["parsed"] == pytest.approx(5 / 6)
    assert f["exact"] == pytest.approx(3 / 6)  # the unparsed verdict is a miss
    assert f["within_one"] == pytest.approx(5 / 6)
    kept = [(p, r) for p, r in zip(pred, ref, strict=True) if p is not None]
    p, r = np.array(kept).T.astype(int)
    assert f["quadratic_kappa"] == pytest.approx(cohen_kappa_score(r, p, weights="quadratic", labels=[1, 2, 3, 4, 5]))
    # by hand, scale 1-3, weights (i - j)^2 / 4: observed disagreement 0.25 / 3, expected 1.25 / 3 -> 1 - 0.2
    assert agreement([1, 3, 3], [1, 2, 3], (1, 3))["quadratic_kappa"] == pytest.approx(0.8)
    assert agreement([1, 5], [1, 5])["quadratic_kappa"] == pytest.approx(1.0)
    assert agreement([None, None], [1, 5])["exact"] == 0 and agreement([None, None], [1, 5])["spearman"] is None


def test_rubric_files_that_do_not_parse_are_file_line_errors(tmp_path):
    path = tmp_path / "rubric.md"
    path.write_text(RUBRIC)
    assert load_rubric(path).startswith("Answers in lower case.")
    path.write_text("Be right.\n5: right\n4 mostly right\n")
    with pytest.raises(DataError, match=r"rubric.md:3: grade: expected 'N: what an answer of grade N does'"):
        load_rubric(path)
    path.write_text("5: a\n4: b\n3: c\n2: d\n1: e\n7: f\n")
    with pytest.raises(DataError, match=r"rubric.md:6: grade: 7 is outside the scale 1-5"):
        load_rubric(path)
    path.write_text("5: a\n4: b\n5: again\n")
    with pytest.raises(DataError, match=r"rubric.md:3: grade: grade 5 is described twice \(first on line 1\)"):
        load_rubric(path)
    path.write_text("5: a\n4: b\n")
    with pytest.raises(DataError, match=r"rubric.md: grade: no line for grade 1, 2, 3"):
        load_rubric(path)
    path.write_text("Be right\u2028and brief.\n5: a\n4: b\n5: again\n", encoding="utf-8")  # U+2028 ends no line
    with pytest.raises(DataError, match=r"rubric.md:4: grade: grade 5 is described twice \(first on line 2\)"):
        load_rubric(path)


def _grades(path, n=24):
    rows = [{"prompt": f"write {i}", "completion": "abc def" if i % 2 else "ABC DEF", "grade": 5 if i % 2 else 1,
             "reasons": "calm" if i % 2 else "loud"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_judge_on_the_tiny_model_writes_rows_agreement_and_a_judge_reward_reads_it(tmp_path):
    (tmp_path / "rubric.md").write_text(RUBRIC)
    result = train_judge(model="tiny", data=str(_grades(tmp_path / "g.jsonl")), rubric=f"@{tmp_path / 'rubric.md'}",
                         out_dir=str(tmp_path / "judge"), max_steps=2, batch_size=4, validation_share=0.25,
                         max_new_tokens=8, progress=False, tensorboard=False)
    rows = [json.loads(line) for line in (tmp_path / "judge" / "judge_rows.jsonl").read_text().splitlines()]
    assert len(rows) == 18 and all(parse_verdict(r["messages"][-1]["content"]) for r in rows)
    assert set(result.agreement) == {"tuned", "untuned"}
    assert all(f["rows"] == 6 and 0 <= f["parsed"] <= 1 for f in result.agreement.values())
    manifest = read_judge(tmp_path / "judge")
    assert manifest["rubric"] == RUBRIC.strip() and manifest["scale"] == [1, 5]
    assert (tmp_path / "judge" / "agentladder.json").exists()
    reward = JudgeReward(str(tmp_path / "judge"), max_new_tokens=8)
    assert reward.rubric == RUBRIC.strip() and reward.scale == (1, 5)
    with pytest.raises(Exception, match="already holds a judge"):
        train_judge(model="tiny", data=str(tmp_path / "g.jsonl"), rubric=f"@{tmp_path / 'rubric.md'}",
                    out_dir=str(tmp_path / "judge"), progress=False)


def test_a_judge_needs_whole_grades_and_graded_rows(tmp_path):
    (tmp_path / "rubric.md").write_text(RUBRIC)
    (tmp_path / "g.jsonl").write_text(json.dumps({"prompt": "q", "completion": "a", "grade": 3.5}) + "\n")
    with pytest.raises(DataError, match="whole numbers"):
        train_judge(model="tiny", data=str(tmp_path / "g.jsonl"), rubric=str(tmp_path / "rubric.md"),
                    out_dir=str(tmp_path / "j"), progress=False)
    (tmp_path / "g.jsonl").write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.raises(DataError, match=r"g.jsonl:1: chosen: expected a graded answer"):
        train_judge(model="tiny", data=str(tmp_path / "g.jsonl"), rubric=str(tmp_path / "rubric.md"),
                    out_dir=str(tmp_path / "j"), progress=False)
