"""The medication-directions parser and scorers, on outputs written by hand."""

import json

import pytest

from agentladder.tasks import Sample, get_task
from agentladder.tasks.medication import (
    BRIEF_PROMPT,
    FIELDS,
    SYSTEM_PROMPT,
    formulary,
    is_dangerous,
)

TASK = get_task("medication-directions")
TARGET = {"drug": "amoxicillin", "strength_mg": 500, "dose_units": 1, "doses_per_day": 3,
          "as_needed": False, "duration_days": 10}
ROW = Sample("rx-1", "Amoxicillin 500 mg capsule - take 1 capsule by mouth three times daily for 10 days", TARGET)


def _score(output: str) -> dict:
    return TASK.score(ROW, TASK.parse(output))


def test_clean_json_is_valid_and_exact():
    parsed = TASK.parse(json.dumps(TARGET))
    assert parsed.valid and parsed.error is None
    score = TASK.score(ROW, parsed)
    assert score["exact"] and all(score["fields"].values())


@pytest.mark.parametrize("output", [
    "Sure! Here is the parse:\n" + json.dumps(TARGET) + "\nLet me know if you need anything else.",
    "```json\n" + json.dumps(TARGET, indent=2) + "\n```",
    "Braces {like these} first, then " + json.dumps(TARGET),
])
def test_prose_and_fences_around_the_json_are_ignored(output):
    assert _score(output)["exact"]


def test_wrong_types_are_invalid_but_other_fields_still_count():
    out = {**TARGET, "strength_mg": "500", "as_needed": "no"}
    parsed = TASK.parse(json.dumps(out))
    assert not parsed.valid
    assert "strength_mg is str" in parsed.error and "as_needed is str" in parsed.error
    score = TASK.score(ROW, parsed)
    assert not score["exact"]
    assert score["fields"] == {"drug": True, "strength_mg": False, "dose_units": True, "doses_per_day": True,
                               "as_needed": False, "duration_days": True}


def test_booleans_are_not_numbers_and_numbers_are_not_booleans():
    parsed = TASK.parse(json.dumps({**TARGET, "dose_units": True, "as_needed": 0}))
    assert not parsed.valid
    fields = TASK.score(ROW, parsed)["fields"]
    assert not fields["dose_units"] and not fields["as_needed"]


def test_missing_and_extra_fields():
    out = {k: v for k, v in TARGET.items() if k != "duration_days"} | {"route": "oral"}
    parsed = TASK.parse(json.dumps(out))
    assert not parsed.valid
    assert parsed.error.startswith("missing duration_days; unexpected route")
    score = TASK.score(ROW, parsed)
    assert score["fields"]["duration_days"] is False and sum(score["fields"].values()) == 5


def test_no_json_at_all():
    parsed = TASK.parse("Amoxicillin, 500 mg, three times a day")
    assert not parsed.valid and parsed.value is None and parsed.error == "no JSON object in the output"
    score = TASK.score(ROW, parsed)
    assert not any(score["fields"].values()) and score["flagged"] is False


def test_numbers_compare_within_relative_tolerance_and_integral_duration():
    assert _score(json.dumps({**TARGET, "strength_mg": 500.0000001, "duration_days": 10.0}))["exact"]
    assert not _score(json.dumps({**TARGET, "duration_days": 10.5}))["exact"]
    assert not _score(json.dumps({**TARGET, "duration_days": None}))["fields"]["duration_days"]


def test_drug_must_match_exactly():
    assert not _score(json.dumps({**TARGET, "drug": "Amoxicillin"}))["fields"]["drug"]


def test_dangerous_flag_from_target_and_from_parse():
    # amoxicillin max 3000 mg/day: 500 x 2 x 4 = 4000 is dangerous, 500 x 1 x 3 = 1500 is not.
    assert is_dangerous("amoxicillin", 500, 2, 4) is True
    assert is_dangerous("amoxicillin", 500, 2, 3) is False  # exactly at the limit is allowed
    assert is_dangerous("Amoxicillin ", 500, 2, 4) is True
    assert is_dangerous("unobtainium", 1, 1, 1) is None
    danger = Sample("rx-2", "...", {**TARGET, "dose_units": 2, "doses_per_day": 4})
    caught = TASK.score(danger, TASK.parse(json.dumps(danger.target)))
    assert caught["dangerous"] is True and caught["flagged"] is True
    missed = TASK.score(danger, TASK.parse(json.dumps(TARGET)))
    assert missed["dangerous"] is True and missed["flagged"] is False


def test_summary_hand_worked():
    # Four rows: two dangerous (one caught), two safe (one false alarm).
    safe = TARGET
    danger = {**TARGET, "dose_units": 2, "doses_per_day": 4}
    rows = [Sample("a", "a", danger), Sample("b", "b", danger), Sample("c", "c", safe), Sample("d", "d", safe)]
    outputs = [
        json.dumps(danger),                          # exact, flagged (true positive)
        json.dumps(safe),                            # 4/6 fields, not flagged (missed)
        json.dumps(danger),                          # 4/6 fields, flagged (false alarm)
        "text " + json.dumps({**safe, "drug": 1}),   # invalid, 5/6 fields, not flagged
    ]
    scores = [TASK.score(r, TASK.parse(o)) for r, o in zip(rows, outputs, strict=True)]
    summary = TASK.summarise(rows, scores, n_resamples=200)
    m = summary.metrics
    assert m["exact_match"].value == pytest.approx(1 / 4)
    assert m["validity"].value == pytest.approx(3 / 4)
    assert m["field_accuracy"].value == pytest.approx((6 + 4 + 4 + 5) / 24)
    assert m["dangerous_recall"].value == pytest.approx(1 / 2) and m["dangerous_recall"].n == 2
    assert m["false_alarm_rate"].value == pytest.approx(1 / 2) and m["false_alarm_rate"].n == 2
    assert summary.breakdowns["field_accuracy"]["drug"].value == pytest.approx(3 / 4)
    assert summary.breakdowns["field_accuracy"]["dose_units"].value == pytest.approx(2 / 4)
    assert summary.confusions["dangerous_flag"] == {"tp": 1, "fn": 1, "fp": 1, "tn": 1}
    for metric in m.values():
        assert metric.low <= metric.value <= metric.high


def test_prompt_uses_system_instruction_and_train_shots():
    rows = TASK.make("test", 5)
    shots = TASK.select_shots(3, exclude=rows)
    messages = TASK.prompt(rows[0], shots)
    assert messages[0].role == "system" and messages[0].content == SYSTEM_PROMPT
    assert all(field in SYSTEM_PROMPT for field in FIELDS)
    assert [m.role for m in messages[1:]] == ["user", "assistant"] * 3 + ["user"]
    assert messages[-1].content == rows[0].input
    assert all(s.id.startswith("rx-train-") for s in shots)
    assert json.loads(messages[2].content) == shots[0].target
    # A shot is never one of the evaluated rows, even when the rows come from the training split.
    pool_head = TASK.shot_pool()[:3]
    assert not {s.id for s in TASK.select_shots(3, exclude=pool_head)} & {s.id for s in pool_head}


def test_sft_conversation_is_the_zero_shot_prompt_answered():
    row = TASK.make("train", 1)[0]
    conv = TASK.to_sft(row)
    assert conv.messages[:-1] == TASK.prompt(row)
    assert conv.messages[-1].role == "assistant" and json.loads(conv.messages[-1].content) == row.target


def test_brief_instructions_are_a_variant_of_the_same_task():
    brief = get_task("medication-directions@brief")
    assert brief.name == "medication-directions@brief" and TASK.name == "medication-directions"
    row = TASK.make("train", 1)[0]
    messages = brief.prompt(row)
    assert messages[0].role == "system" and messages[0].content == BRIEF_PROMPT
    assert len(BRIEF_PROMPT) * 20 < len(SYSTEM_PROMPT)
    assert messages[1:] == TASK.prompt(row)[1:]
    assert brief.to_sft(row).messages[:-1] == messages
    # Same rows, parser and scorers: only the instruction differs.
    assert brief.make("test", 3) == TASK.make("test", 3)
    assert brief.score(ROW, brief.parse(json.dumps(TARGET)))["exact"] is True
    with pytest.raises(ValueError, match="task 'medication-directions' has no instructions 'terse' .it has: brief"):
        get_task("medication-directions@terse")


def test_brief_lower_instructions_lower_case_the_line_and_answer_compact_json():
    lower = get_task("medication-directions@brief-lower")
    row = next(r for r in TASK.make("test", 50) if r.input != r.input.lower())  # a line with capitals
    messages = lower.prompt(row)
    assert messages[0].content == BRIEF_PROMPT and messages[-1].content == row.input.lower()
    assert get_task("medication-directions@brief").prompt(row)[-1].content == row.input
    assert TASK.prompt(row)[-1].content == row.input  # the task's own prompt keeps the line as written
    shot = TASK.make("train", 1)[0]
    assert lower.prompt(row, [shot])[1].content == shot.input.lower()  # shots alike
    sft = lower.to_sft(row)
    assert sft.messages[-2].content == row.input.lower() and json.loads(sft.messages[-1].content) == row.target
    assert sft.messages[-1].content == json.dumps(row.target, separators=(",", ":"))  # no layout spaces
    assert TASK.to_sft(row).messages[-1].content == json.dumps(row.target)  # the task's own answer keeps them
    assert lower.score(row, lower.parse(json.dumps(row.target)))["exact"] is True  # either layout scores
    assert lower.make("test", 3) == TASK.make("test", 3)  # the same rows, targets and scoring


def test_packaged_formulary():
    table = formulary()
    assert len(table) == 49 and table["levothyroxine"].strengths_mg[0] == 0.025
    assert table["acetaminophen"].max_daily_mg == 4000
