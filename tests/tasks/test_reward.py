"""One task reward: the default formula, a chosen score, and a task that overrides it."""

import json

import pytest

from agentladder.errors import ConfigError
from agentladder.tasks import Parsed, Sample, Task, get_task
from agentladder.tasks.reward import metric_value, scores_reward

TASK = get_task("medication-directions")


def test_task_reward_orders_exact_then_fields_then_validity():
    assert scores_reward({"exact": True, "valid": True, "fields": {"a": True, "b": True}}) == 1.0
    wrong_field = scores_reward({"exact": False, "valid": True, "fields": {"a": True, "b": False}})
    invalid = scores_reward({"exact": False, "valid": False, "fields": {"a": True, "b": False}})
    assert 1.0 > wrong_field > invalid > 0
    assert wrong_field == pytest.approx((0 + 0.5 + 0.5) / 3.5) and invalid == pytest.approx(0.5 / 3.5)
    assert scores_reward({"reward": 0.25, "exact": True}) == 0.25
    with pytest.raises(ConfigError, match="reward"):
        scores_reward({"dangerous": True})


def test_a_metric_is_read_as_a_number_or_a_share_of_true_values():
    scores = {"exact": False, "valid": True, "fields": {"a": True, "b": False, "c": True, "d": True}, "f1": 0.4}
    assert metric_value(scores, "exact") == 0.0 and metric_value(scores, "valid") == 1.0
    assert metric_value(scores, "fields") == 0.75 and metric_value(scores, "f1") == 0.4
    with pytest.raises(ConfigError, match=r"task 'med' scores \['exact', 'f1', 'fields', 'valid'\], not 'nope'"):
        metric_value(scores, "nope", "med")


def test_medication_reward_is_the_default_formula_on_its_scores():
    sample = TASK.make("test", 1, seed=0)[0]
    right = TASK.target_text(sample)
    wrong = json.dumps({**sample.target, "doses_per_day": sample.target["doses_per_day"] + 1})
    assert TASK.reward(sample, TASK.parse(right)) == 1.0
    assert TASK.reward(sample, TASK.parse(wrong)) == pytest.approx((0 + 5 / 6 + 0.5) / 3.5)
    assert TASK.reward(sample, TASK.parse("not json")) == 0.0
    assert TASK.reward(sample, TASK.parse(wrong), "exact") == 0.0
    assert TASK.reward(sample, TASK.parse(wrong), "fields") == pytest.approx(5 / 6)
    # A style changes the prompt, never the reward.
    assert get_task("medication-directions@brief-lower").reward(sample, TASK.parse(wrong)) == TASK.reward(
        sample, TASK.parse(wrong))


class _Lengthy(Task):
    """A task whose own reward is not in its scores: shorter answers are better."""

    name = "lengthy"

    def load(self, path):
        raise NotImplementedError

    def parse(self, output):
        return Parsed(output, bool(output))

    def score(self, sample, parsed):
        return {"valid": parsed.valid, "chars": len(parsed.value)}

    def summarise(self, samples, scores, *, n_resamples=1000, seed=0):
        raise NotImplementedError

    def reward(self, sample, parsed, metric=None):
        if metric is not None:
            return super().reward(sample, parsed, metric)
        return 1.0 / (1 + len(parsed.value))


def test_a_task_gives_its_own_reward_and_keeps_the_metric_choice():
    task, sample = _Lengthy(), Sample("1", "q", None)
    assert task.reward(sample, task.parse("abc")) == 0.25
    assert task.reward(sample, task.parse("abc"), "chars") == 3.0
