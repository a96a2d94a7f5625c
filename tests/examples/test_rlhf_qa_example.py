"""examples/rlhf: the pharmacy Q&A rubric grader on hand-made answers, the feedback it simulates (pairs and
grades in the documented feedback form), and the rubric file it ships."""

import random
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rlhf"
sys.path.insert(0, str(EXAMPLE))

from qa_feedback import candidates, feedback, gold_score, grade, questions, sft_rows  # noqa: E402

from agentladder.data.feedback import load_feedback, load_rubric  # noqa: E402
from agentladder.data.io import write_jsonl  # noqa: E402

PID = "drug:ibuprofen:dosing"
PASSAGE = ("Ibuprofen dosing: Ibuprofen is a non-steroidal anti-inflammatory (NSAID). It comes as 200, 400, 600, "
           "800 mg tablets; at most 3200 mg in 24 hours for adults.")


def test_the_rubric_grades_correct_specific_cited_concise():
    best = f"Ibuprofen comes as 200 to 800 mg tablets; at most 3200 mg in 24 hours for adults. [{PID}]"
    assert grade(best, PID, PASSAGE) == (5, "correct, specific, cited, concise")
    assert grade(best.replace(f" [{PID}]", ""), PID, PASSAGE)[0] == 4
    assert grade(best.replace(PID, "drug:naproxen:dosing"), PID, PASSAGE)[1].endswith("cites the wrong passage, concise")
    assert grade(best.replace("3200", "4000"), PID, PASSAGE) == (2, "wrong: states 4000, not in the passage")
    assert grade("Please ask your doctor, everyone is different.", PID, PASSAGE)[0] == 1
    assert grade("", PID, PASSAGE) == (1, "no answer")
    vague = f"Ibuprofen is a non-steroidal anti-inflammatory for adults. [{PID}]"
    assert grade(vague, PID, PASSAGE) == (4, "correct, vague, cited, concise")
    long = " ".join([best.replace(f" [{PID}]", "")] * 3) + f" [{PID}]"
    assert grade(long, PID, PASSAGE)[0] == 4 and "too long" in grade(long, PID, PASSAGE)[1]
    assert gold_score(best, None, {"passage_id": PID, "passage": PASSAGE}) == 5.0


def test_simulated_feedback_is_in_the_documented_form(tmp_path):
    rows = questions(None, "train", 24)
    assert all(r["metadata"]["passage_id"] in r["prompt"][1]["content"] for r in rows)
    assert len(candidates(rows[0], random.Random(0))) == 6
    pairs, grades = feedback(rows)
    assert pairs and all(p["metadata"]["grades"][0] > p["metadata"]["grades"][1] for p in pairs)
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    write_jsonl(tmp_path / "grades.jsonl", grades)
    assert len(load_feedback(tmp_path / "pairs.jsonl")) == len(pairs)  # what train reward reads
    assert len(load_feedback(tmp_path / "grades.jsonl", kinds=("grades",))) == 24
    assert {len(s["messages"]) for s in sft_rows(rows)} == {3}
    assert load_rubric(EXAMPLE / "qa_rubric.md").startswith("Pharmacy answers")
    test = questions(None, "test", 10)
    assert not {r["metadata"]["question"] for r in test} & {r["metadata"]["question"] for r in rows}
