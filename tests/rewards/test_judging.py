"""Judge prompts and verdict parsers: structured verdicts, malformed ones unscored (``None``)."""

import pytest

from agentladder.rewards.judging import (
    DEFAULT_RUBRIC,
    pair_prompt,
    parse_preference,
    parse_verdict,
    single_prompt,
)


@pytest.mark.parametrize("text, score", [
    ('{"score": 4, "reason": "good"}', 4.0),
    ('Verdict: {"score": 5} done', 5.0),
    ('{"score": 2.5, "reason": "partly"}', 2.5),
    ('{"score": 7}', None),            # off the scale
    ('{"score": "4"}', None),          # a string, not a number
    ('{"score": true}', None),         # a boolean is not a score
    ('{"grade": 4}', None),            # wrong key
    ("I would give it a 4.", None),    # no JSON
    ('{"score": 4', None),             # cut off
])
def test_parse_verdict(text, score):
    verdict = parse_verdict(text)
    assert (verdict.score if verdict else None) == score


@pytest.mark.parametrize("text, winner", [
    ('{"winner": "A"}', "A"), ('{"winner": "b", "reason": "x"}', "B"), ('{"winner": "tie"}', "tie"),
    ('{"winner": "C"}', None), ('{"winner": 1}', None), ("A is better", None),
])
def test_parse_preference(text, winner):
    assert parse_preference(text) == winner


def test_prompts_show_the_rubric_the_request_the_reference_and_the_answers():
    single = single_prompt("be brief", "q", "a", reference="r", scale=(0, 10))
    assert [m.role for m in single] == ["system", "user"]
    assert "from 0 to 10" in single[0].content and '"score": <integer 0-10>' in single[0].content
    assert single[1].content == "Rubric: be brief\n\nRequest:\nq\n\nReference answer:\nr\n\nAnswer to grade:\na"
    assert "Reference answer" not in single_prompt(DEFAULT_RUBRIC, "q", "a")[1].content
    pair = pair_prompt("be brief", "q", "first", "second")
    assert pair[1].content.endswith("Answer A:\nfirst\n\nAnswer B:\nsecond") and '"winner"' in pair[0].content
