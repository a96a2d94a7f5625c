"""The RL maths: advantage estimators, policy losses, KL estimators and aggregation.

Each is checked against hand-worked numbers and against a plain-loop version written here.
"""

import math

import pytest
import torch

from agentladder.train.advantages import (
    AdvantageInput,
    discounted_returns,
    gae,
    group_normalised,
    leave_one_out,
    masked_whiten,
    reinforce_pp,
    zero_variance_groups,
)
from agentladder.train.rl_losses import (
    aggregate,
    aggregate_mean,
    clipped_policy_loss,
    kl_estimate,
    log_ratio,
    value_loss,
)


# -- advantages -----------------------------------------------------------------------------------
def test_group_normalised_hand_worked():
    scores = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0])
    group = torch.tensor([0, 0, 0, 0, 1, 1])
    adv = group_normalised(scores, group, eps=0.0 + 1e-12)
    # group 0: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735 -> +-0.866025; group 1: all equal -> 0
    assert adv.tolist() == pytest.approx([0.866025, -0.866025, -0.866025, 0.866025, 0.0, 0.0], abs=1e-5)
    dr = group_normalised(scores, group, std=False)
    assert dr.tolist() == pytest.approx([0.5, -0.5, -0.5, 0.5, 0.0, 0.0])


def test_leave_one_out_hand_worked():
    scores = torch.tensor([1.0, 0.0, 0.0, 1.0, 3.0])
    group = torch.tensor([0, 0, 0, 0, 1])
    # a 1 against the others' mean 1/3; a 0 against 2/3; a group of one gets 0
    assert leave_one_out(scores, group).tolist() == pytest.approx([2 / 3, -2 / 3, -2 / 3, 2 / 3, 0.0])


def test_group_estimators_match_plain_loops():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(24, generator=g)
    group = torch.arange(6).repeat_interleave(4)[torch.randperm(24, generator=g)]
    want_grpo, want_rloo = [], []
    for i in range(24):
        same = [scores[j].item() for j in range(24) if group[j] == group[i]]
        mean = sum(same) / len(same)
        std = math.sqrt(sum((x - mean) ** 2 for x in same) / (len(same) - 1))
        want_grpo.append((scores[i].item() - mean) / (std + 1e-6))
        others = [scores[j].item() for j in range(24) if group[j] == group[i] and j != i]
        want_rloo.append(scores[i].item() - sum(others) / len(others))
    assert group_normalised(scores, group).tolist() == pytest.approx(want_grpo, abs=1e-5)
    assert leave_one_out(scores, group).tolist() == pytest.approx(want_rloo, abs=1e-6)


def test_discounted_returns_hand_worked_and_skip_masked_tokens():
    r = torch.tensor([[1.0, 0.0, 2.0]])
    assert discounted_returns(r, torch.ones(1, 3), gamma=0.5).tolist() == [[1.5, 1.0, 2.0]]
    # a tool token (mask 0) in the middle neither earns nor discounts
    r = torch.tensor([[1.0, 9.0, 0.0, 2.0]])
    m = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    assert discounted_returns(r, m, gamma=0.5).tolist() == [[1.5, 0.0, 1.0, 2.0]]


def test_gae_hand_worked():
    # rewards [0, 1], values [0.5, 0.8], gamma = lambda = 1:
    # delta_1 = 1 - 0.8 = 0.2; delta_0 = 0 + 0.8 - 0.5 = 0.3; A = [0.5, 0.2]; returns = A + V = [1.0, 1.0]
    inp = AdvantageInput(torch.tensor([1.0]), torch.tensor([0]), torch.ones(1, 2), token_rewards=torch.tensor([[0.0, 1.0]]),
                         values=torch.tensor([[0.5, 0.8]]), gamma=1.0, lam=1.0)
    out = gae(inp)
    assert out.returns[0].tolist() == pytest.approx([1.0, 1.0])
    raw = out.returns - inp.values
    assert raw[0].tolist() == pytest.approx([0.5, 0.2])


def test_gae_matches_plain_loop():
    g = torch.Generator().manual_seed(1)
    rewards, values = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    lengths = [5, 3, 1]
    mask = torch.zeros(3, 5)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    gamma, lam = 0.9, 0.8
    out = gae(AdvantageInput(torch.zeros(3), torch.arange(3), mask, rewards * mask, values, gamma=gamma, lam=lam))
    for i, n in enumerate(lengths):
        adv = [0.0] * n
        running = 0.0
        for t in reversed(range(n)):
            nxt = values[i, t + 1].item() if t + 1 < n else 0.0
            delta = rewards[i, t].item() + gamma * nxt - values[i, t].item()
            running = delta + gamma * lam * running
            adv[t] = running
        got = (out.returns[i, :n] - values[i, :n]).tolist()
        assert got == pytest.approx(adv, abs=1e-5)


def test_reinforce_pp_whitens_returns_over_the_batch():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    rewards = torch.tensor([[0.0, 1.0, 0.0], [-0.1, 0.0, 0.0]])
    out = reinforce_pp(AdvantageInput(torch.zeros(2), torch.arange(2), mask, token_rewards=rewards))
    returns = discounted_returns(rewards, mask)
    vals = returns[mask > 0]
    want = (vals - vals.mean()) / vals.std()
    assert out.advantages[mask > 0].tolist() == pytest.approx(want.tolist(), abs=1e-4)
    assert out.advantages[0, 2] == 0


def test_masked_whiten_unit_variance():
    x = torch.randn(4, 6)
    m = (torch.rand(4, 6) > 0.3).float()
    w = masked_whiten(x, m)
    assert float(w[m > 0].mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(w[m > 0].std()) == pytest.approx(1.0, abs=1e-3)
    assert torch.all(w[m == 0] == 0)


def test_zero_variance_groups_hand_worked():
    scores = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.5, 0.5, 0.0, 0.0])
    group = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    assert zero_variance_groups(scores, group).tolist() == [True, False, True, True]


# -- KL estimators ---------------------------------------------------------------------------------
def test_kl_estimators_hand_worked():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    # d = log(ref / pi) = log 0.5
    assert kl_estimate(logp, ref, "k1").item() == pytest.approx(math.log(2))
    assert kl_estimate(logp, ref, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)
    assert kl_estimate(logp, ref, "k3").item() == pytest.approx(0.5 - math.log(0.5) - 1)
    with pytest.raises(ValueError, match="k1, k2 or k3"):
        kl_estimate(logp, ref, "k4")


def test_kl_estimators_are_unbiased_where_they_should_be():
    # Samples from p = softmax(a) against q = softmax(b): k1 and k3 average to KL(p || q).
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, generator=g), torch.randn(6, generator=g)
    p, q = a.log_softmax(0), b.log_softmax(0)
    true = float((p.exp() * (p - q)).sum())
    x = torch.multinomial(p.exp(), 200_000, replacement=True, generator=g)
    for kind in ("k1", "k3"):
        assert kl_estimate(p[x], q[x], kind).mean().item() == pytest.approx(true, rel=0.03)
    assert torch.all(kl_estimate(p[x], q[x], "k3") >= 0)


# -- policy losses ---------------------------------------------------------------------------------
def _lp(ratios):
    old = torch.zeros(1, len(ratios))
    return torch.log(torch.tensor([ratios])), old


def test_asymmetric_clipping_clips_where_it_should():
    logp, old = _lp([1.5, 1.25, 0.5, 0.85, 1.25])
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0, -1.0]])
    out = clipped_policy_loss(logp, old, adv, torch.ones(1, 5), clip_low=0.2, clip_high=0.28)
    # 1.5 > 1.28 with A > 0: clipped to 1.28; 1.25 within (0.8, 1.28): not; 0.5 < 0.8 with A < 0: clipped to 0.8;
    # 0.85 with A < 0: not; 1.25 with A < 0: the unclipped term is the larger loss, kept (pessimistic bound).
    assert out.loss[0].tolist() == pytest.approx([-1.28, -1.25, 0.8, 0.85, 1.25])
    assert out.clipped_high.tolist() == [[True, False, False, False, False]]
    assert out.clipped_low.tolist() == [[False, False, True, False, False]]
    # with symmetric 0.2, 1.25 is clipped on the high side
    sym = clipped_policy_loss(logp, old, adv, torch.ones(1, 5), clip_low=0.2, clip_high=0.2)
    assert sym.loss[0, 1].item() == pytest.approx(-1.2)


def test_clipped_tokens_get_no_gradient():
    logp, old = _lp([1.5, 1.1])
    logp.requires_grad_(True)
    out = clipped_policy_loss(logp, old, torch.ones(1, 2), torch.ones(1, 2), clip_low=0.2, clip_high=0.28)
    out.loss.sum().backward()
    assert logp.grad[0, 0].item() == 0.0
    assert logp.grad[0, 1].item() == pytest.approx(-1.1)


def test_dual_clip_bounds_negative_advantages():
    logp, old = _lp([5.0, 5.0])
    adv = torch.tensor([[-1.0, 1.0]])
    out = clipped_policy_loss(logp, old, adv, torch.ones(1, 2), clip_low=0.2, clip_high=0.2, dual_clip=3.0)
    assert out.loss[0].tolist() == pytest.approx([3.0, -1.2])
    assert out.dual_clipped.tolist() == [[True, False]]


def test_clipped_loss_matches_plain_loop():
    g = torch.Generator().manual_seed(3)
    logp, old, adv = torch.randn(4, 6, generator=g) * 0.3, torch.randn(4, 6, generator=g) * 0.3, torch.randn(4, 6, generator=g)
    mask = (torch.rand(4, 6, generator=g) > 0.2).float()
    out = clipped_policy_loss(logp, old, adv, mask, clip_low=0.1, clip_high=0.3, dual_clip=2.0)
    for i in range(4):
        for t in range(6):
            r = math.exp(logp[i, t] - old[i, t])
            a = adv[i, t].item()
            loss = max(-a * r, -a * min(max(r, 0.9), 1.3))
            if a < 0:
                loss = min(loss, -a * 2.0)
            assert out.loss[i, t].item() == pytest.approx(loss * mask[i, t].item(), abs=1e-5)


def test_gspo_ratio_is_the_geometric_mean_of_token_ratios():
    logp = torch.tensor([[0.1, 0.3, 0.0], [0.2, -0.4, 0.5]], requires_grad=True)
    old = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    lr = log_ratio(logp, old, mask, "sequence")
    geo0 = math.sqrt(math.exp(0.1) * math.exp(0.3))
    geo1 = (math.exp(0.2) * math.exp(-0.4) * math.exp(0.5)) ** (1 / 3)
    assert torch.exp(lr[0, :2]).tolist() == pytest.approx([geo0, geo0])
    assert torch.exp(lr[1]).tolist() == pytest.approx([geo1] * 3)
    assert lr[0, 2] == 0


def test_gspo_token_loss_has_the_sequence_level_gradient():
    """With one advantage per response, GSPO-token's gradient equals GSPO's (Zheng et al. eq. 10)."""
    g = torch.Generator().manual_seed(5)
    base = torch.randn(3, 4, generator=g) * 0.01
    old = torch.randn(3, 4, generator=g) * 0.01
    mask = torch.tensor([[1.0, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    seq_adv = torch.tensor([1.0, -0.5, 2.0])
    adv = seq_adv[:, None] * mask
    a = base.clone().requires_grad_(True)
    out = clipped_policy_loss(a, old, adv, mask, clip_low=1.0, clip_high=1.0, level="sequence")
    aggregate_mean(out.loss, mask, "seq_mean_token_mean").backward()
    b = base.clone().requires_grad_(True)
    s = torch.exp(((b - old) * mask).sum(-1) / mask.sum(-1))
    (-(seq_adv * s)).mean().backward()
    assert torch.allclose(a.grad, b.grad * mask, atol=1e-6)


def test_value_loss_hand_worked():
    v, old, ret = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.0]]), torch.tensor([[0.0, 1.0]])
    # token 0: unclipped (1 - 0)^2 = 1, clipped V = 0.7 -> 0.49; max 1 -> 0.5. token 1: 1 -> 0.5
    assert value_loss(v, old, ret, torch.ones(1, 2), clip=0.2).tolist() == [[0.5, 0.5]]


# -- aggregation -----------------------------------------------------------------------------------
def test_aggregation_hand_worked():
    loss = torch.tensor([[1.0, 2.0, 5.0], [3.0, 7.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert aggregate(loss, mask, "token_mean") == (pytest.approx(6.0), 3.0)
    assert aggregate_mean(loss, mask, "token_mean").item() == pytest.approx(2.0)
    assert aggregate_mean(loss, mask, "seq_mean_token_mean").item() == pytest.approx((1.5 + 3) / 2)
    assert aggregate_mean(loss, mask, "seq_sum_norm", norm_length=4).item() == pytest.approx((3 / 4 + 3 / 4) / 2)
    with pytest.raises(ValueError, match="norm_length"):
        aggregate(loss, mask, "seq_sum_norm")


def test_aggregation_sums_split_exactly_over_micro_batches():
    """The loop adds sums and units over micro-batches: the result must equal the whole batch's mean."""
    g = torch.Generator().manual_seed(7)
    loss, mask = torch.rand(6, 5, generator=g), (torch.rand(6, 5, generator=g) > 0.3).float()
    mask[:, 0] = 1
    for mode in ("token_mean", "seq_mean_token_mean", "seq_sum_norm"):
        whole = aggregate_mean(loss, mask, mode, norm_length=5).item()
        parts = [aggregate(loss[i : i + 2], mask[i : i + 2], mode, norm_length=5) for i in range(0, 6, 2)]
        assert sum(float(s) for s, _ in parts) / sum(u for _, u in parts) == pytest.approx(whole)
