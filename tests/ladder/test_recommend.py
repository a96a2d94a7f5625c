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


def test_a_classification_component_starts_with_the_classifier_rung():
    rec = recommend(accuracy=0.47, target=0.9, labeled=3000, task="log-triage", component="classification")
    assert rec.rung == "classifier" and rec.ready and rec.plan == ["classifier", "sft"]
    assert rec.command.startswith("agentladder train classifier") and "--task log-triage" in rec.command
    assert rec.component == "classification" and rec.expected is None
    text = rec.text()
    assert text.startswith("component: classification\nnext rung: classifier on frozen features")
    assert "frozen model's features" in text and "kind: classifier" in text
    short = recommend(accuracy=0.47, target=0.9, labeled=150, component="classification")
    assert not short.ready and short.data_needed == "50 more labelled examples"
    assert recommend(accuracy=0.9, target=0.9, component="classification").rung == "none"


def test_a_retrieval_component_is_told_embedding_fine_tuning_and_its_command():
    rec = recommend(accuracy=0.6, target=0.9, labeled=2000, component="retrieval")
    assert rec.rung == "embedding" and rec.ready and rec.plan == ["embedding"]
    assert rec.command.startswith("agentladder train embed ")
    assert "the retrieval rung" in rec.title
    assert any("agentladder train embed" in r for r in rec.reasons)
    assert not recommend(accuracy=0.6, target=0.9, labeled=999, component="retrieval").ready


@pytest.mark.parametrize("component", ["generation", "extraction"])
def test_generation_and_extraction_follow_the_phased_plan(component):
    rec = recommend(labeled=1200, pairs=0, accuracy=0.78, target=0.95, component=component)
    assert rec.rung == "sft" and rec.plan == ["sft", "preference", "rl"] and rec.component == component
    assert rec.reasons[0].startswith(f"a {component} component writes its answer")


def test_an_unknown_component_is_a_clear_error():
    with pytest.raises(ValueError, match="component 'ranking': choose one of classification, extraction"):
        recommend(accuracy=0.5, target=0.9, component="ranking")


def test_the_cli_takes_the_component():
    from typer.testing import CliRunner

    from agentladder.cli import app

    res = CliRunner().invoke(app, ["recommend", "--component", "classification", "--labeled", "3000",
                                   "--accuracy", "0.47", "--target", "0.9", "--task", "log-triage", "--json"])
    assert res.exit_code == 0, res.output
    assert '"rung": "classifier"' in res.output and '"component": "classification"' in res.output
    bad = CliRunner().invoke(app, ["recommend", "--component", "ranking", "--accuracy", "0.5", "--target", "0.9"])
    assert bad.exit_code == 1 and "choose one of classification" in bad.output
