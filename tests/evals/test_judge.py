"""The evaluation's LLM judge: malformed verdicts unscored, pairwise in both orders.

The verdict parsers themselves are tested with the rest of the judge prompts in
``tests/rewards/test_judging.py``.
"""

import pytest

import agentladder.evals
import agentladder.rewards.judging
from agentladder.evals import Judge, ScriptedProvider


def test_the_evaluation_exports_the_judge_parsers_of_the_rewards_layer():
    for name in ("DEFAULT_RUBRIC", "Verdict", "parse_preference", "parse_verdict"):
        assert getattr(agentladder.evals, name) is getattr(agentladder.rewards.judging, name)


def test_malformed_verdicts_are_unscored_not_wrong():
    judge = ScriptedProvider(['{"score": 5}', "no idea", '{"score": 1}', '{"score": 3, "reason": "ok"}'])
    result = Judge(judge, "be correct").grade(["q1", "q2", "q3", "q4"], ["a1", "a2", "a3", "a4"], n_resamples=100)
    assert result.unscored == 1
    # Scored rows rescaled from 1..5 to 0..1: 1.0, 0.0, 0.5 -> mean 0.5 over 3 rows (not 4).
    assert result.metric.value == pytest.approx(0.5) and result.metric.n == 3
    assert result.verdicts[1] is None and result.verdicts[3].reason == "ok"
    prompt = judge.calls[0]
    assert prompt[0].role == "system" and "be correct" in prompt[1].content and "a1" in prompt[1].content


def test_win_rate_judges_both_orders_and_cancels_position_bias():
    questions = ["q1", "q2"]
    candidate, baseline = ["good answer 1", "good answer 2"], ["bad answer 1", "bad answer 2"]

    # A judge that always picks the first answer shown: the orders cancel, 0.5 each row.
    biased = ScriptedProvider(lambda prompt: '{"winner": "A"}')
    pair = Judge(biased).win_rate(questions, candidate, baseline, n_resamples=100)
    assert pair.per_row == [0.5, 0.5] and pair.metric.value == 0.5 and pair.consistency == 0.0
    # Each row was asked twice, with the answers swapped.
    asked = [(c[1].content.index("good") < c[1].content.index("bad")) for c in biased.calls]
    assert asked == [True, True, False, False]

    # A judge that reads the answers and prefers the good one, wherever it stands: a clean win.
    def fair(prompt):
        text = prompt[1].content
        return '{"winner": "A"}' if text.index("good") < text.index("bad") else '{"winner": "B"}'

    pair = Judge(ScriptedProvider(fair)).win_rate(questions, candidate, baseline, n_resamples=100)
    assert pair.per_row == [1.0, 1.0] and pair.consistency == 1.0


def test_win_rate_ties_and_half_malformed_rows():
    # Row 1: tie in both orders -> 0.5. Row 2: candidate wins as A, malformed as B -> 1.0 from one order.
    # Row 3: malformed both times -> unscored.
    answers = iter(['{"winner": "tie"}', '{"winner": "A"}', "??",
                    '{"winner": "tie"}', "garbled", "??"])
    judge = ScriptedProvider(lambda prompt: next(answers))
    pair = Judge(judge).win_rate(["q1", "q2", "q3"], ["c1", "c2", "c3"], ["b1", "b2", "b3"], n_resamples=100)
    assert pair.per_row == [0.5, 1.0, None] and pair.unscored == 1
    assert pair.metric.value == pytest.approx(0.75) and pair.metric.n == 2
