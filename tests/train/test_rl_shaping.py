"""Reward shaping before the advantage: the rollout's KL, the KL in the reward, span values; the one estimator call.

Each is checked against hand-worked numbers.
"""

import math

import pytest
import torch

from agentladder.errors import ConfigError
from agentladder.rewards.base import Span
from agentladder.train.advantages import ESTIMATORS, AdvantageInput, estimate_advantages, grpo
from agentladder.train.rl_shaping import (
    add_span_values,
    kl_in_reward,
    kl_penalised_scores,
    kl_penalised_token_rewards,
    mean_token_kl,
    span_values,
    token_kl,
)


def _close(got: torch.Tensor, want: list[list[float]]) -> None:
    torch.testing.assert_close(got, torch.tensor(want), atol=1e-6, rtol=1e-6)


def test_token_kl_hand_worked():
    # d = log(ref / pi) = log(0.25 / 0.5) = -log 2 on the first token; the second is not trained
    logp = torch.tensor([[math.log(0.5), math.log(0.5)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.1)]])
    mask = torch.tensor([[1.0, 0.0]])
    _close(token_kl(logp, ref, mask, "k1"), [[math.log(2), 0.0]])
    _close(token_kl(logp, ref, mask, "k3"), [[0.5 + math.log(2) - 1, 0.0]])  # exp(d) - d - 1


def test_mean_token_kl_is_over_trained_tokens():
    kl = torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert mean_token_kl(kl, mask) == pytest.approx(2.0)
    assert mean_token_kl(torch.zeros(1, 2), torch.zeros(1, 2)) == 0.0


def test_sequence_kl_in_the_reward_hand_worked():
    scores = torch.tensor([1.0, 0.0])
    kl = torch.tensor([[0.1, 0.2], [0.5, 0.0]])
    # r - beta sum_t KL_t with beta 0.5: 1 - 0.15, 0 - 0.25
    assert kl_penalised_scores(scores, kl, 0.5).tolist() == pytest.approx([0.85, -0.25])


def test_token_kl_in_the_reward_hand_worked():
    scores = torch.tensor([1.0, 2.0])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    kl = torch.tensor([[0.1, 0.2, 0.0], [0.4, 0.0, 0.0]])
    # the score on the last trained token, minus 0.5 KL on every token
    want = [[-0.05, 0.9, 0.0], [1.8, 0.0, 0.0]]
    _close(kl_penalised_token_rewards(scores, kl, mask, 0.5), want)


def test_kl_in_reward_gives_each_estimator_what_it_reads():
    scores = torch.tensor([1.0, 2.0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    kl = torch.tensor([[0.2, 0.2], [0.4, 0.0]])
    none = kl_in_reward(scores, mask, None, 0.5, per_token=True)
    assert none.scores is scores and none.token_rewards is None
    outcome = kl_in_reward(scores, mask, kl, 0.5, per_token=False)
    assert outcome.scores.tolist() == pytest.approx([0.8, 1.8]) and outcome.token_rewards is None
    token = kl_in_reward(scores, mask, kl, 0.5, per_token=True)
    assert token.scores.tolist() == [1.0, 2.0]
    _close(token.token_rewards, [[-0.1, 0.9], [1.8, 0.0]])


def test_span_values_add_to_the_trained_tokens_advantage():
    adv = torch.tensor([[1.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, -2.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert add_span_values(adv, values, mask).tolist() == [[1.5, -1.0, 0.0]]


def test_span_values_map_character_spans_onto_tokens(tok):
    a = tok("ab cd", add_special_tokens=False)["input_ids"]  # one token a character
    b = tok("xy", add_special_tokens=False)["input_ids"]
    out = span_values(tok, [a, b], [[Span(3, 5, -1.0), Span(0, 1, 0.5)], []], width=6)
    assert out.tolist() == [[0.5, 0.0, 0.0, -1.0, -1.0, 0.0], [0.0] * 6]
    assert span_values(tok, [a, b], [[], []], width=6) is None


def test_estimate_advantages_is_one_call_over_the_registry():
    inp = AdvantageInput(torch.tensor([1.0, 0.0]), torch.tensor([0, 0]), torch.ones(2, 3))
    assert torch.equal(estimate_advantages("grpo", inp).advantages, grpo(inp).advantages)
    assert set(ESTIMATORS) == {"grpo", "dr_grpo", "rloo", "reinforce_pp", "gae"}
    with pytest.raises(ConfigError, match="unknown advantage 'nope'"):
        estimate_advantages("nope", inp)
