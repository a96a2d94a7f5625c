"""The RL step's typed records: scoring a group, dynamic sampling, rollout statistics, update sums, the metrics line."""

import math

import pytest
import torch

from agentladder.models.rollout import Completion
from agentladder.rewards import PythonReward, WeightedEnsemble
from agentladder.train.rl_batch import rollout_batch
from agentladder.train.rl_metrics import (
    RolloutStats,
    Update,
    UpdateSums,
    step_metrics,
    update_metrics,
)
from agentladder.train.rl_rollout import (
    Group,
    PromptRow,
    informative_groups,
    rollout_stats,
    score_group,
)


def _completion(n: int, finish: str = "stop") -> Completion:
    return Completion(list(range(1, n + 1)), [-0.5] * n, "x" * n, finish)


def _group(totals, lengths, finish="stop", name="r") -> Group:
    completions = [_completion(n, finish) for n in lengths]
    return Group(PromptRow("p", [], [7, 8]), completions, list(totals), {name: list(totals)}, [[] for _ in totals])


def test_score_group_adds_the_overlong_penalty_and_reports_it():
    reward = WeightedEnsemble([("len", PythonReward(lambda c, t, m: 0.1 * len(c)), 2.0)])
    completions = [_completion(4), _completion(7), _completion(8, "length")]
    g = score_group(reward, PromptRow("p", [], [1]), completions, max_new_tokens=8, overlong_buffer_ratio=0.25)
    # buffer 2 of 8: no penalty up to 6 tokens, -0.5 at 7, -1 at 8; the ensemble gives 2 x 0.1 x length
    assert g.components["overlong"] == [0.0, -0.5, -1.0]
    assert g.total == pytest.approx([0.8, 1.4 - 0.5, 1.6 - 1.0])
    plain = score_group(reward, PromptRow("p", [], [1]), completions, max_new_tokens=8)
    assert "overlong" not in plain.components and plain.total == pytest.approx([0.8, 1.4, 1.6])


def test_informative_groups_are_those_whose_rewards_differ():
    groups = [_group([1.0, 1.0], [2, 2]), _group([0.0, 1.0], [2, 2]), _group([0.5, 0.5], [2, 2])]
    assert informative_groups(groups) == [groups[1]]
    assert informative_groups([]) == []


def test_rollout_stats_hand_worked():
    first = [_group([1.0, 0.0], [2, 4]), _group([0.5, 0.5], [6, 8], finish="length")]
    stats = rollout_stats(first, kept=1, seen=4, rounds=2, gen_s=2.0, gen_tokens=40)
    assert stats.reward == pytest.approx(0.5) and stats.responses == 4
    assert stats.reward_std == pytest.approx(math.sqrt(0.5 / 3))  # unbiased: squares 0.25, 0.25, 0, 0
    assert stats.components == {"r": pytest.approx(0.5)}
    assert (stats.response_len, stats.truncated, stats.zero_variance_groups) == (5.0, 0.5, 0.5)
    assert (stats.groups_kept, stats.gen_tokens_per_s, stats.kl) == (0.25, 20.0, None)
    empty = rollout_stats([], kept=0, seen=0, rounds=1, gen_s=0.0, gen_tokens=0)
    assert empty.responses == 0 and "reward" not in empty.metrics()


def test_rollout_batch_builds_samples_and_masks_the_overlong_filter_drops():
    groups = [_group([1.0, 0.0], [2, 3], finish="length"), _group([0.2, 0.4], [1, 1])]
    groups[0].completions[0] = _completion(2)  # the first response ended; the second was cut
    batch = rollout_batch(groups, overlong_filter=True)
    assert [s.group for s in batch.samples] == [0, 0, 1, 1]
    assert batch.mask.tolist() == [[1, 1, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0]]
    assert batch.old_logps.tolist() == [[-0.5, -0.5, 0], [-0.5] * 3, [-0.5, 0, 0], [-0.5, 0, 0]]
    assert batch.scores.tolist() == pytest.approx([1.0, 0.0, 0.2, 0.4])
    assert batch.samples[1].truncated and batch.samples[1].mask == [0, 0, 0]
    batch.set_per_token("advantages", torch.arange(12.0).view(4, 3))
    assert [s.advantages for s in batch.samples] == [[0.0, 1.0], [3.0, 4.0, 5.0], [6.0], [9.0]]
    # nothing trained at all: an empty batch
    cut = [_group([1.0, 0.0], [2, 2], finish="length")]
    assert rollout_batch(cut, overlong_filter=True).samples == []


def test_update_sums_add_and_reduce():
    a = UpdateSums(tokens=4, clip_low=1, entropy=2.0, kl_loss=0.5)
    b = UpdateSums(tokens=6, clip_high=2, entropy=1.0, kl_loss=0.25)
    s = a + b
    assert (s.tokens, s.clip_low, s.clip_high, s.entropy, s.kl_loss, s.value_loss) == (10, 1, 2, 3.0, 0.75, None)
    doubled = s.all_sum(lambda x: 2 * x)
    assert (doubled.tokens, doubled.kl_loss, doubled.value_loss) == (20, 1.5, None)


def _update(loss, tokens, clip_low, clip_high, *, kl_loss=None, value_loss=None, lr=1e-3) -> Update:
    sums = UpdateSums(tokens=tokens, clip_low=clip_low, clip_high=clip_high, entropy=tokens * 2.0,
                      ratio=tokens * 1.0, kl_loss=kl_loss, value_loss=value_loss)
    return Update(loss=loss, units=tokens, lr=lr, sums=sums, grad_norm=loss * 10, n_tokens=tokens + 5,
                  n_trained_tokens=tokens)


def test_update_metrics_hand_worked():
    updates = [_update(1.0, 4, 1, 0, kl_loss=0.4, value_loss=2.0), _update(3.0, 10, 0, 5, kl_loss=0.5, value_loss=1.0)]
    out = update_metrics(updates, rollout_kl=0.7)
    # per-token fractions of each update, averaged over the updates
    assert out["clip_low_frac"] == pytest.approx((1 / 4 + 0) / 2)
    assert out["clip_high_frac"] == pytest.approx((0 + 5 / 10) / 2)
    assert out["clip_frac"] == pytest.approx(0.125 + 0.25)
    assert (out["loss"], out["entropy"], out["ratio_mean"], out["grad_norm"]) == pytest.approx((2.0, 2.0, 1.0, 20.0))
    assert out["kl"] == pytest.approx((0.1 + 0.05) / 2)  # the KL loss term wins over the rollout's KL
    assert out["value_loss"] == pytest.approx((0.5 + 0.1) / 2)
    assert (out["updates"], out["units"], out["n_tokens"], out["n_trained_tokens"]) == (2, 14, 24, 14)
    no_term = update_metrics([_update(1.0, 4, 0, 0)], rollout_kl=0.7)
    assert no_term["kl"] == 0.7 and "value_loss" not in no_term
    none = update_metrics([], rollout_kl=None)
    assert none["updates"] == 0 and math.isnan(none["loss"]) and "kl" not in none


def test_step_metrics_keep_the_metrics_line_keys_in_order():
    stats = RolloutStats(gen_rounds=1, groups_kept=1.0, gen_s=1.0, gen_tokens=8, responses=4, reward=0.5,
                         components={"lower": 0.5, "overlong": 0.0}, response_len=2.0, kl=0.01)
    line = step_metrics(stats, [_update(1.0, 4, 0, 1)], train_s=0.5, lr=9.0)
    assert list(line) == [
        "reward", "reward_std", "reward/lower", "reward/overlong", "response_len", "truncated",
        "zero_variance_groups", "gen_rounds", "groups_kept", "gen_s", "gen_tokens", "gen_tokens_per_s", "train_s",
        "updates", "kl", "loss", "clip_low_frac", "clip_high_frac", "dual_clip_frac", "entropy", "ratio_mean", "units",
        "clip_frac", "grad_norm", "n_tokens", "n_trained_tokens", "lr"]
    assert line["lr"] == 1e-3  # the rate the first update used
    assert step_metrics(stats, [], train_s=0.5, lr=9.0)["lr"] == 9.0  # no update: the schedule's
