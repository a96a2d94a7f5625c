"""The decision guide at the boundaries of each phase, and what it says about data."""

import pytest

from agentladder.ladder.recommend import phase_for, recommend


@pytest.mark.parametrize(("accuracy", "phase"), [
    (0.0, "prompt"), (0.749, "prompt"), (0.75, "sft"), (0.849, "sft"), (0.85, "preference"),
    (0.919, "preference"), (0.92, "rl"), (0.97, "rl"),
])
def test_the_phase_is_the_cheapest_whose_ceiling_is_not_reached(accuracy, phase):
    assert phase_for(accuracy).name == phase
    assert recommend(accuracy=accuracy, target=0.99, labeled=100_000, pairs=100_000, checks=True).rung == phase


def test_a_met_target_needs_no_rung():
    rec = recommend(accuracy=0.95, target=0.95)
    assert rec.rung == "none" and rec.ready and rec.plan == []


def test_the_issue_example_sft_on_the_labelled_data_then_preference_then_rl():
    rec = recommend(labeled=1200, pairs=0, accuracy=0.78, target=0.95)
    assert rec.rung == "sft" and rec.ready and rec.expected == (0.80, 0.85)
    assert rec.plan == ["sft", "preference", "rl"]
    assert "1,200 labelled examples are enough" in rec.text()


def test_sft_needs_500_labelled_examples_or_a_way_to_distil():
    assert recommend(accuracy=0.8, target=0.9, labeled=500).ready
    short = recommend(accuracy=0.8, target=0.9, labeled=499)
    assert not short.ready and short.data_needed.startswith("1 more")
    distil = recommend(accuracy=0.8, target=0.9, labeled=0, checks=True)
    assert not distil.ready and "distill" in distil.command


def test_preference_needs_1000_pairs_or_a_grader_or_labelled_answers_to_build_them():
    assert recommend(accuracy=0.86, target=0.9, pairs=1000).ready
    none = recommend(accuracy=0.86, target=0.9, pairs=999)
    assert not none.ready and none.data_needed.startswith("1 more")
    assert recommend(accuracy=0.86, target=0.9, pairs=0, judge=True).ready
    assert recommend(accuracy=0.86, target=0.9, pairs=0, labeled=1000).ready
    assert not recommend(accuracy=0.86, target=0.9, pairs=0, labeled=999).ready


def test_rl_needs_a_reward_and_10000_prompts():
    no_reward = recommend(accuracy=0.93, target=0.97, labeled=50_000)
    assert no_reward.rung == "rl" and not no_reward.ready and "reward" in no_reward.data_needed
    assert recommend(accuracy=0.93, target=0.97, labeled=5000, trajectories=5000, checks=True).ready
    short = recommend(accuracy=0.93, target=0.97, labeled=5000, trajectories=4999, checks=True)
    assert not short.ready and short.data_needed == "1 more prompts"


@pytest.mark.parametrize(("target", "plan"), [
    (0.70, ["prompt"]), (0.75, ["prompt"]), (0.76, ["prompt", "sft"]), (0.85, ["prompt", "sft"]),
    (0.90, ["prompt", "sft", "preference"]), (0.95, ["prompt", "sft", "preference", "rl"]),
])
def test_the_plan_runs_to_the_first_phase_whose_range_reaches_the_target(target, plan):
    assert recommend(accuracy=0.5, target=target).plan == plan


def test_a_target_above_the_usual_range_is_said_so():
    assert any("above what the phased approach" in r for r in recommend(accuracy=0.9, target=0.99).reasons)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="share between 0 and 1"):
        recommend(accuracy=78, target=0.95)
    with pytest.raises(ValueError, match="labeled cannot be negative"):
        recommend(accuracy=0.5, target=0.95, labeled=-1)
