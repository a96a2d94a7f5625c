"""Graders, judges, ensembles, span rewards, shaping and reward configs."""

import json

import pytest
import torch

from agentladder.data.schema import Message
from agentladder.models.providers import ScriptedProvider
from agentladder.rewards import (
    ExactMatch,
    FieldMatch,
    GroupJudgeReward,
    JSONSchemaReward,
    JudgeReward,
    NumericReward,
    PythonReward,
    RegexReward,
    RegexSpanReward,
    RewardInput,
    Span,
    TaskReward,
    WeightedEnsemble,
    WrongFieldSpans,
    build_rewards,
    overlong_penalty,
    parse_ranking,
    span_token_values,
    token_char_ranges,
)
from agentladder.rewards.shaping import overlong_buffer

PROMPT = [Message(role="user", content="What is six times seven?")]


def item(completion, target=None, **kw):
    return RewardInput(PROMPT, completion, target, **kw)


def score(reward, completion, target=None):
    return reward.score_group([item(completion, target)])[0].score


def test_exact_and_regex():
    assert score(ExactMatch(), "  Paris ", "paris") == 1.0
    assert score(ExactMatch(case=True), "Paris", "paris") == 0.0
    assert score(RegexReward(r"\d+"), "it is 42") == 1.0
    assert score(RegexReward(r"\d+", full=True), "it is 42") == 0.0
    assert score(RegexReward(r"answer: (?P<a>\w+)", target_group="a"), "answer: 42", "42") == 1.0
    assert score(RegexReward(r"answer: (?P<a>\w+)", target_group="a"), "answer: 41", "42") == 0.0
    with pytest.raises(ValueError, match="invalid regex"):
        RegexReward("(")


def test_numeric_tolerance():
    assert score(NumericReward(), "6 x 7 = 42", 42) == 1.0
    assert score(NumericReward(), "6 x 7 = 42.5", 42) == 0.0
    assert score(NumericReward(rel_tol=0.02), "about 42.5", 42) == 1.0
    assert score(NumericReward(which="first"), "6 x 7 = 42", 6) == 1.0
    assert score(NumericReward(), "1,234 in all", 1234) == 1.0
    assert score(NumericReward(), "no number", 1) == 0.0


def test_field_match_and_schema():
    target = {"drug": "amoxicillin", "strength_mg": 500, "as_needed": False}
    out = 'Sure: {"drug": "Amoxicillin", "strength_mg": 500.0, "as_needed": true}'
    assert score(FieldMatch(), out, target) == pytest.approx(2 / 3)
    assert score(FieldMatch(all_or_nothing=True), out, target) == 0.0
    assert score(FieldMatch(["drug"]), out, target) == 1.0
    assert score(FieldMatch(), "no json", target) == 0.0
    schema = {"type": "object", "required": ["drug"], "properties": {"drug": {"type": "string"}}}
    assert score(JSONSchemaReward(schema), '{"drug": "x"}') == 1.0
    assert score(JSONSchemaReward(schema), '{"drug": 3}') == 0.0


def _fn_with_spans(completion, target, metadata):
    return {"score": 0.5, "spans": [(0, 3, -1.0)]}


def test_python_function_reward():
    r = PythonReward(lambda c, t, m: len(c) == t)
    assert score(r, "abc", 3) == 1.0
    out = PythonReward(f"{__name__}:_fn_with_spans").score_group([item("abcdef")])[0]
    assert out.score == 0.5 and out.spans == [Span(0, 3, -1.0)]
    with pytest.raises(ValueError, match="cannot load"):
        PythonReward("no_such_module:fn")


def test_task_scorer_reward():
    from agentladder.tasks import get_task

    task = get_task("medication-directions")
    sample = task.make("test", 1, seed=0)[0]
    right = task.target_text(sample)
    wrong = json.loads(right)
    wrong["doses_per_day"] = wrong["doses_per_day"] + 1
    meta = {"input": sample.input}
    exact, fields = TaskReward("medication-directions", "exact"), TaskReward("medication-directions", "fields")
    assert exact.score_group([item(right, sample.target, metadata=meta)])[0].score == 1.0
    assert exact.score_group([item(json.dumps(wrong), sample.target, metadata=meta)])[0].score == 0.0
    assert fields.score_group([item(json.dumps(wrong), sample.target, metadata=meta)])[0].score == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="not 'nope'"):
        TaskReward("medication-directions", "nope").score_group([item(right, sample.target, metadata=meta)])


def test_task_reward_without_a_metric_is_the_tasks_own_reward():
    from agentladder.tasks import get_task

    task = get_task("medication-directions@brief-lower")
    sample = task.make("test", 1, seed=0)[0]
    wrong = json.dumps({**sample.target, "doses_per_day": sample.target["doses_per_day"] + 1})
    own = TaskReward(task)
    assert own.name == "medication-directions@brief-lower:default"
    got = own.score_group([item(wrong, sample.target, metadata={"input": sample.input})])[0].score
    assert got == task.reward(sample, task.parse(wrong)) == pytest.approx((0 + 5 / 6 + 0.5) / 3.5)
    ensemble = build_rewards([{"type": "task", "task": "medication-directions"}])
    assert ensemble.names == ["medication-directions:default"]


def test_judge_reward_maps_scale_and_keeps_unscored_neutral():
    judge = ScriptedProvider(['{"score": 5, "reason": "right"}', '{"score": 1, "reason": "wrong"}', "I cannot say"])
    r = JudgeReward(judge, rubric="Correct arithmetic.")
    out = r.score_group([item("42"), item("41"), item("?")])
    assert [o.score for o in out] == [1.0, 0.0, 0.5]
    assert "Correct arithmetic." in judge.calls[0][1].content and "42" in judge.calls[0][1].content


def test_group_judge_ranks_a_group():
    judge = ScriptedProvider(['{"ranking": [2, 3, 1], "reason": "..."}', '{"ranking": [1, 1, 2]}'])
    r = GroupJudgeReward(judge)
    group = [item("41"), item("42"), item("forty-two")]
    assert [o.score for o in r.score_group(group)] == [0.0, 1.0, 0.5]
    assert "Answer 3:\nforty-two" in judge.calls[0][1].content
    assert [o.score for o in r.score_group(group)] == [0.5, 0.5, 0.5]  # not a permutation: no signal
    assert parse_ranking('{"ranking": ["2", "1"]}', 2) == [1, 0]
    assert parse_ranking('{"ranking": [1]}', 2) is None


def test_weighted_ensemble_reports_components():
    ens = WeightedEnsemble([("exact", ExactMatch(), 1.0), ("has_digit", RegexReward(r"\d"), 0.25),
                            ("spans", RegexSpanReward("bad", value=-1.0), 0.5)])
    scores = ens.score_group([item("42", "42"), item("bad 41", "42")])
    assert scores.total == [1.25, 0.25]
    assert scores.components == {"exact": [1.0, 0.0], "has_digit": [1.0, 1.0], "spans": [0.0, 0.0]}
    assert scores.spans == [[], [Span(0, 3, -0.5)]]
    with pytest.raises(ValueError, match="unique"):
        WeightedEnsemble([("a", ExactMatch(), 1.0), ("a", ExactMatch(), 1.0)])


def test_wrong_field_spans_mark_the_wrong_value():
    text = '{"drug": "x", "dose": 2}'
    out = WrongFieldSpans(value=-0.5).score_group([item(text, {"drug": "x", "dose": 1})])[0]
    assert out.score == 0.5
    (span,) = out.spans
    assert text[span.start : span.end] == "2" and span.value == -0.5


def test_span_values_land_on_their_tokens(tok):
    ids = tok("ab cd", add_special_tokens=False)["input_ids"]
    starts, ends = token_char_ranges(tok, ids)
    assert ends[-1] == 5
    values = span_token_values(ends, starts, [Span(3, 5, -1.0), Span(0, 1, 0.5)])
    assert values == [0.5, 0.0, 0.0, -1.0, -1.0]


def test_overlong_penalty_hand_worked():
    lengths = torch.tensor([4, 6, 8, 10])
    # L_max 10, buffer 4: no penalty up to 6, then (6 - L) / 4, -1 at the limit
    assert overlong_penalty(lengths, 10, 4).tolist() == [0.0, 0.0, -0.5, -1.0]
    assert overlong_penalty(lengths, 10, 4, factor=0.5).tolist() == [0.0, 0.0, -0.25, -0.5]
    with pytest.raises(ValueError, match="buffer"):
        overlong_penalty(lengths, 10, 0)
    # the buffer is the last share of the budget, rounded, never under one token
    assert (overlong_buffer(64, 0.25), overlong_buffer(10, 0.25), overlong_buffer(8, 0.01)) == (16, 2, 1)


def test_rewards_from_config_and_their_errors():
    ens = build_rewards([{"type": "exact"}, {"type": "regex", "pattern": "a", "weight": 0.5, "name": "has_a"}])
    assert ens.names == ["exact", "has_a"]
    with pytest.raises(ValueError, match=r"rewards\[0\].type: 'nope' is not a reward type"):
        build_rewards([{"type": "nope"}])
    with pytest.raises(ValueError, match=r"rewards\[1\]: regex takes pattern, full, target_group, flags, not patern"):
        build_rewards([{"type": "exact"}, {"type": "regex", "patern": "a"}])
    with pytest.raises(ValueError, match=r"rewards\[0\].weight"):
        build_rewards([{"type": "exact", "weight": "high"}])
    with pytest.raises(ValueError, match=r"rewards\[0\] \(regex\): invalid regex"):
        build_rewards([{"type": "regex", "pattern": "("}])
