"""Gate logic: which rung is kept, when the climb ends, guards, and ties at the boundaries."""

import pytest

from agentladder.errors import ConfigError
from agentladder.ladder.config import Gate, Guard
from agentladder.ladder.gates import judge
from agentladder.ladder.scoring import paired


def m(exact, recall=0.5, false_alarm=0.1):
    return {"exact_match": exact, "dangerous_recall": recall, "false_alarm_rate": false_alarm}


GATE = Gate(metric="exact_match", target=0.9, min_gain=0.05)


def test_the_first_rung_is_always_kept_and_has_no_gain():
    v = judge(GATE, "exact_match", m(0.0), None)
    assert v.kept and v.gain is None and not v.target_met and not v.stop


def test_a_rung_is_kept_at_exactly_the_minimum_gain_and_rejected_just_below():
    kept = judge(GATE, "exact_match", m(0.35), m(0.30))
    assert kept.kept and kept.gain == pytest.approx(0.05) and not kept.stop
    short = judge(GATE, "exact_match", m(0.349), m(0.30))
    assert not short.kept and not short.stop and "< 0.050" in short.reason


def test_reaching_the_target_ends_the_climb_and_a_small_gain_across_it_is_enough():
    at = judge(GATE, "exact_match", m(0.90), m(0.80))
    assert at.kept and at.target_met and at.stop
    across = judge(GATE, "exact_match", m(0.91), m(0.89))  # gain 0.02 < min_gain, but it reaches the target
    assert across.kept and across.target_met and across.stop
    below = judge(GATE, "exact_match", m(0.899), m(0.80))
    assert below.kept and not below.target_met and not below.stop


def test_a_rejected_rung_leaves_the_champion_and_the_climb_goes_on_unless_stop_on_stall():
    v = judge(GATE, "exact_match", m(0.2), m(0.5))
    assert not v.kept and v.gain == pytest.approx(-0.3) and not v.stop
    stalling = Gate(metric="exact_match", target=0.9, min_gain=0.05, stop_on_stall=True)
    v = judge(stalling, "exact_match", m(0.52), m(0.5))
    assert not v.kept and v.stop and not v.target_met


def test_a_rung_level_min_gain_overrides_the_gate():
    assert judge(GATE, "exact_match", m(0.31), m(0.30), min_gain=0.0).kept
    assert not judge(GATE, "exact_match", m(0.40), m(0.30), min_gain=0.2).kept


def test_guards_reject_a_rung_that_worsens_a_domain_metric_beyond_its_allowance():
    gate = Gate(metric="exact_match", target=0.9, guards=[Guard(metric="dangerous_recall", max_drop=0.1),
                                                         Guard(metric="false_alarm_rate", max_drop=0.0,
                                                               higher_is_better=False)])
    assert judge(gate, "exact_match", m(0.6, recall=0.4), m(0.5, recall=0.5)).kept  # drop 0.1: allowed
    v = judge(gate, "exact_match", m(0.6, recall=0.39), m(0.5, recall=0.5))
    assert not v.kept and "dangerous_recall" in v.reason
    v = judge(gate, "exact_match", m(0.6, false_alarm=0.2), m(0.5, false_alarm=0.1))
    assert not v.kept and "false_alarm_rate" in v.reason
    # A guard metric that applied to no row on one side is not compared.
    assert judge(gate, "exact_match", m(0.6, recall=None), m(0.5)).kept


def test_lower_is_better_metrics_gain_when_they_fall():
    gate = Gate(metric="false_alarm_rate", target=0.05, min_gain=0.01, higher_is_better=False)
    v = judge(gate, "false_alarm_rate", m(0.5, false_alarm=0.10), m(0.5, false_alarm=0.20))
    assert v.kept and v.gain == pytest.approx(0.10) and not v.target_met
    assert judge(gate, "false_alarm_rate", m(0.5, false_alarm=0.05), m(0.5, false_alarm=0.2)).stop


def test_an_unknown_or_empty_gate_metric_is_a_clear_error():
    with pytest.raises(ValueError, match="'accuracy' is not among the task's metrics"):
        judge(GATE, "accuracy", m(0.5), None)
    with pytest.raises(ValueError, match="has no value"):
        judge(GATE, "exact_match", {"exact_match": None}, None)


def test_a_rung_gated_on_its_control_must_beat_it_by_the_minimum_gain_and_a_tie_is_rejected():
    gate = Gate(metric="exact_match", target=0.9, min_gain=0.0)
    assert judge(gate, "exact_match", m(0.6), m(0.5), control=m(0.59)).kept
    tie = judge(gate, "exact_match", m(0.6), m(0.5), control=m(0.6))
    assert not tie.kept and "its control scores 0.600" in tie.reason and tie.gain == pytest.approx(0.1)
    # a rung that reaches the target but not past its control leaves the target unmet and the climb going
    at = judge(gate, "exact_match", m(0.92), m(0.8), control=m(0.95))
    assert not at.kept and not at.target_met and not at.stop
    wide = judge(GATE, "exact_match", m(0.6), m(0.5), control=m(0.57))
    assert not wide.kept and "(the rung +0.030)" in wide.reason
    assert judge(GATE, "exact_match", m(0.6), m(0.5), control=m(0.55)).kept
    # not kept over the champion: the control does not matter
    assert not judge(GATE, "exact_match", m(0.52), m(0.5), control=m(0.1)).kept


def test_max_p_keeps_only_a_significant_step_up_on_the_paired_rows():
    gate = Gate(metric="exact_match", target=0.99, min_gain=0.0, max_p=0.05)
    champion = "1" * 80 + "0" * 20
    churn = "0" * 12 + "1" * 68 + "1" * 14 + "0" * 6  # loses 12, wins 14: +0.02 net
    step = "1" * 80 + "1" * 8 + "0" * 12  # wins 8, loses none: +0.08
    v = judge(gate, "exact_match", m(0.82), m(0.80), paired=paired(champion, churn))
    assert not v.kept and "(+14 -12)" in v.reason and "not a significant step" in v.reason
    v = judge(gate, "exact_match", m(0.88), m(0.80), paired=paired(champion, step))
    assert v.kept and "(+8 -0)" in v.reason and v.p == paired(champion, step)["p"] < 0.05
    # Without max_p the churn is kept on its net gain; the first rung needs no pair.
    v = judge(Gate(metric="exact_match", target=0.99), "exact_match", m(0.82), m(0.80), paired=paired(champion, churn))
    assert v.kept and v.p is None  # the verdict's p is the one the gate judged: none here
    assert judge(gate, "exact_match", m(0.8), None).kept
    # A rung that loses is rejected on its gain before any paired test is asked for.
    assert not judge(gate, "exact_match", m(0.7), m(0.8)).kept
    with pytest.raises(ConfigError, match="max_p"):
        judge(gate, "exact_match", m(0.82), m(0.80))
