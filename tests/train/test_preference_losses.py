"""Each preference loss against TRL (a test-only reference) on the same fixed inputs: value and gradient to 1e-5.

TRL computes its losses inside its trainers from a model's per-token log-probabilities.
A stand-in model hands TRL fixed per-token log-probabilities ``(2B, T-1)`` (a leaf
tensor); ours sums the same tensor per response. Both gradients are taken with
respect to that leaf. TRL's DPO trainer gives DPO, IPO and DPO+NLL (``sigmoid`` +
``sft``, which TRL calls RPO), its CPO trainer conservative DPO and SimPO, its ORPO trainer the odds
ratio, its KTO trainer KTO.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from agentladder.train.preference_losses import (
    PAIR_LOSSES,
    LossParams,
    MarkedLogps,
    PairLogps,
    dpo_loss,
    ipo_loss,
    kto_kl_estimate,
    kto_loss,
    log1mexp,
    orpo_loss,
)

pytest.importorskip("trl")

B, T = 4, 9
ATOL = 1e-5


def _masks(equal_chosen: bool = False) -> torch.Tensor:
    """``(2B, T)`` completion masks: rows ``:B`` chosen, ``B:`` rejected; the first token is always prompt."""
    g = torch.Generator().manual_seed(1)
    m = torch.zeros(2 * B, T, dtype=torch.long)
    for i in range(2 * B):
        start = int(torch.randint(1, 4, (1,), generator=g))
        length = 4 if (equal_chosen and i < B) else int(torch.randint(1, T - start + 1, (1,), generator=g))
        m[i, start : start + length] = 1
    return m


def _token_logps(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (-torch.rand(2 * B, T - 1, generator=g, dtype=torch.float64) * 2).float().requires_grad_(True)


def _ours(per_token: torch.Tensor, mask: torch.Tensor, ref: tuple[torch.Tensor, torch.Tensor] | None) -> PairLogps:
    shift = mask[:, 1:].to(per_token.dtype)
    sums = (per_token * shift).sum(1)
    counts = shift.sum(1)
    return PairLogps(sums[:B], sums[B:], counts[:B], counts[B:], *(ref or (None, None)))


class _FixedModel(torch.nn.Module):
    """Stands in for a model under TRL's fused head: returns the given per-token log-probabilities in turn."""

    def __init__(self, *outputs: torch.Tensor):
        super().__init__()
        self.outputs = list(outputs)

    def forward(self, **kwargs):
        logps = self.outputs.pop(0)
        zeros = torch.zeros_like(logps.detach())
        return SimpleNamespace(log_probs=logps, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool())


def _accelerator():
    return SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=lambda x: x, gather=lambda x: x)


def _trl_dpo(per_token, mask, ref, *, loss_types, loss_weights=None, beta=0.1):
    from trl import DPOTrainer

    t = DPOTrainer.__new__(DPOTrainer)
    model = _FixedModel(per_token * mask[:, 1:])  # the fused head gives 0 where there is no label
    t.__dict__.update(
        model=model, accelerator=_accelerator(), aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True,
        f_divergence_type="reverse_kl", loss_types=loss_types, loss_weights=loss_weights or [1.0] * len(loss_types),
        beta=beta, label_smoothing=0.0, use_weighting=False, _metrics={"train": defaultdict(list)},
        _total_train_tokens=0, _tp_size=1,
    )
    inputs = {"input_ids": torch.zeros_like(mask), "attention_mask": torch.ones_like(mask), "completion_mask": mask,
              "ref_chosen_logps": ref[0], "ref_rejected_logps": ref[1]}
    return t._compute_loss(model, inputs, False)


def _ref() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return -torch.rand(B, generator=g) * 6, -torch.rand(B, generator=g) * 6


def _compare(ours_fn, trl_fn, seed=0):
    a = _token_logps(seed)
    b = a.detach().clone().requires_grad_(True)
    ours = ours_fn(a)
    ours.backward()
    theirs = trl_fn(b)
    theirs.backward()
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    torch.testing.assert_close(a.grad, b.grad, atol=ATOL, rtol=0)
    assert a.grad.abs().sum() > 0


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_matches_trl(beta):
    mask, ref = _masks(), _ref()
    _compare(lambda x: dpo_loss(_ours(x, mask, ref), LossParams(beta=beta)).loss.mean(),
             lambda x: _trl_dpo(x, mask, ref, loss_types=["sigmoid"], beta=beta))


@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_ipo_matches_trl(beta):
    mask, ref = _masks(), _ref()
    _compare(lambda x: ipo_loss(_ours(x, mask, ref), LossParams(beta=beta)).loss.mean(),
             lambda x: _trl_dpo(x, mask, ref, loss_types=["ipo"], beta=beta))


def test_dpo_nll_matches_trl_sigmoid_plus_sft():
    # TRL's NLL is a token mean over the batch, ours a mean of per-pair means: equal for equal chosen lengths.
    mask, ref = _masks(equal_chosen=True), _ref()
    p = LossParams(beta=0.1, nll_alpha=0.7)
    _compare(lambda x: PAIR_LOSSES["dpo_nll"](_ours(x, mask, ref), p).loss.mean(),
             lambda x: _trl_dpo(x, mask, ref, loss_types=["sigmoid", "sft"], loss_weights=[1.0, 0.7]))


def _cpo(loss_type, beta, label_smoothing=0.0, simpo_gamma=0.5):
    from trl.experimental.cpo import CPOTrainer

    t = CPOTrainer.__new__(CPOTrainer)
    t.__dict__.update(alpha=0.0, loss_type=loss_type, beta=beta, label_smoothing=label_smoothing,
                      simpo_gamma=simpo_gamma, accelerator=_accelerator())
    return t


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_conservative_dpo_matches_trl(eps):
    # TRL's CPO "sigmoid" loss is cDPO's formula on whatever log-ratio it is given: pass DPO's.
    mask, ref = _masks(), _ref()
    cpo = _cpo("sigmoid", beta=0.2, label_smoothing=eps)

    def theirs(x):
        lp = _ours(x, mask, ref)
        c, r = lp.logratios()
        return cpo.cpo_loss(c, r)[0].mean()

    _compare(lambda x: dpo_loss(_ours(x, mask, ref), LossParams(beta=0.2, label_smoothing=eps)).loss.mean(), theirs)


@pytest.mark.parametrize(("beta", "gamma", "eps"), [(2.0, 0.5, 0.0), (2.5, 1.0, 0.1)])
def test_simpo_matches_trl(beta, gamma, eps):
    mask = _masks()
    cpo = _cpo("simpo", beta=beta, label_smoothing=eps, simpo_gamma=gamma)

    def theirs(x):
        lp = _ours(x, mask, None)
        return cpo.cpo_loss(lp.chosen / lp.chosen_tokens, lp.rejected / lp.rejected_tokens)[0].mean()

    p = LossParams(beta=beta, simpo_gamma=gamma, label_smoothing=eps)
    _compare(lambda x: PAIR_LOSSES["simpo"](_ours(x, mask, None), p).loss.mean(), theirs)


def test_orpo_matches_trl_odds_ratio_plus_nll():
    from trl.experimental.orpo import ORPOTrainer

    t = ORPOTrainer.__new__(ORPOTrainer)
    t.__dict__.update(beta=0.1, accelerator=_accelerator())
    mask = _masks(equal_chosen=True)  # TRL's NLL is a token mean over the batch (see test_rpo)

    def theirs(x):
        lp = _ours(x, mask, None)
        shift = mask[:B, 1:].bool()
        nll = -x[:B][shift].mean()
        losses = t.odds_ratio_loss(lp.chosen / lp.chosen_tokens, lp.rejected / lp.rejected_tokens)[0]
        return nll - losses.mean()

    _compare(lambda x: orpo_loss(_ours(x, mask, None), LossParams(beta=0.1)).loss.mean(), theirs)


def _trl_kto(per_token, kl_per_token, mask, kl_mask, label, ref, ref_kl, *, beta=0.1, wd=1.0, wu=1.0):
    from trl import KTOTrainer

    t = KTOTrainer.__new__(KTOTrainer)
    model = _FixedModel(kl_per_token * kl_mask[:, 1:], per_token * mask[:, 1:])  # KL first, as TRL asks
    t.__dict__.update(
        model=model, accelerator=_accelerator(), aux_loss_enabled=False, precompute_ref_logps=True,
        calculate_KL=True, loss_type="kto", beta=beta, desirable_weight=wd, undesirable_weight=wu,
        _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
    )
    inputs = {"input_ids": torch.zeros_like(mask), "attention_mask": torch.ones_like(mask), "completion_mask": mask,
              "KL_input_ids": torch.zeros_like(kl_mask), "KL_attention_mask": torch.ones_like(kl_mask),
              "KL_completion_mask": kl_mask, "label": label, "ref_logps": ref, "ref_KL_logps": ref_kl}
    return t._compute_loss(model, inputs, False)


@pytest.mark.parametrize(("beta", "wd", "wu", "kl_shift"), [(0.1, 1.0, 1.0, 0.0), (0.5, 1.33, 0.8, 3.0)])
def test_kto_matches_trl(beta, wd, wu, kl_shift):
    # Rows 0..2B-1 are single responses; kl_shift moves the reference so that z_0 > 0 in the second case.
    mask = _masks()
    kl_mask = _masks().flip(0)
    label = torch.tensor([True, False, True, True, False, False, True, False])
    g = torch.Generator().manual_seed(3)
    ref = -torch.rand(2 * B, generator=g) * 6
    ref_kl = -torch.rand(2 * B, generator=g) * 6 - kl_shift
    kl_tokens = _token_logps(seed=5).detach()

    def ours(x):
        shift = mask[:, 1:].to(x.dtype)
        kl_logps = (kl_tokens * kl_mask[:, 1:]).sum(1)
        m = MarkedLogps((x * shift).sum(1), ref, label, kto_kl_estimate(kl_logps, ref_kl))
        return kto_loss(m, LossParams(beta=beta, desirable_weight=wd, undesirable_weight=wu)).loss.mean()

    _compare(ours, lambda x: _trl_kto(x, kl_tokens, mask, kl_mask, label, ref, ref_kl, beta=beta, wd=wd, wu=wu))


# -- hand-worked numbers ------------------------------------------------------------------------
def _pair(chosen, rejected, ref_c=0.0, ref_r=0.0, n_c=1.0, n_r=1.0) -> PairLogps:
    t = lambda v: torch.tensor([float(v)])  # noqa: E731
    return PairLogps(t(chosen), t(rejected), t(n_c), t(n_r), t(ref_c), t(ref_r))


def test_dpo_hand_worked():
    # Equal log-ratios: loss log 2, both rewards 0.
    out = dpo_loss(_pair(-3, -5, -3, -5), LossParams(beta=0.1))
    assert out.loss.item() == pytest.approx(math.log(2))
    # h = (-2 - -3) - (-6 - -5) = 2; beta h = 1: loss = log(1 + e^-1).
    out = dpo_loss(_pair(-2, -6, -3, -5), LossParams(beta=0.5))
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(-1)))
    assert (out.chosen_reward.item(), out.rejected_reward.item()) == pytest.approx((0.5, -0.5))
    # Conservative: eps = 0.25 mixes in the flipped label's loss log(1 + e^1).
    smooth = dpo_loss(_pair(-2, -6, -3, -5), LossParams(beta=0.5, label_smoothing=0.25))
    assert smooth.loss.item() == pytest.approx(0.75 * math.log1p(math.exp(-1)) + 0.25 * math.log1p(math.e))


def test_ipo_hand_worked():
    # Per-token log-ratios 2/2 = 1 and -3/3 = -1, gap 2; tau 0.25 -> target 2: loss 0.
    assert ipo_loss(_pair(2, -3, 0, 0, 2, 3), LossParams(beta=0.25)).loss.item() == pytest.approx(0.0)
    # Same gap, tau 1 -> target 0.5: loss (2 - 0.5)^2.
    assert ipo_loss(_pair(2, -3, 0, 0, 2, 3), LossParams(beta=1.0)).loss.item() == pytest.approx(2.25)


def test_simpo_orpo_kto_hand_worked():
    # SimPO: beta (avg_w - avg_l) - gamma = 2 (-1 - -2) - 2 = 0 -> log 2.
    simpo = PAIR_LOSSES["simpo"](_pair(-4, -10, n_c=4, n_r=5), LossParams(beta=2.0, simpo_gamma=2.0))
    assert simpo.loss.item() == pytest.approx(math.log(2))
    # ORPO: equal per-token averages -> log odds ratio 0: loss = -avg_w + lambda log 2.
    orpo = orpo_loss(_pair(-2, -4, n_c=2, n_r=4), LossParams(beta=0.1))
    assert orpo.loss.item() == pytest.approx(1.0 + 0.1 * math.log(2))
    # KTO: r = 0, z_0 = 0 -> every row's loss is lambda (1 - 1/2).
    m = MarkedLogps(torch.tensor([-1.0, -2.0]), torch.tensor([-1.0, -2.0]), torch.tensor([True, False]),
                    torch.tensor(0.0))
    out = kto_loss(m, LossParams(desirable_weight=2.0, undesirable_weight=1.0))
    assert out.loss.tolist() == pytest.approx([1.0, 0.5])
    # The KL estimate never goes below 0 and carries no gradient.
    x = torch.tensor([-1.0, -3.0], requires_grad=True)
    assert kto_kl_estimate(x, torch.tensor([0.0, 0.0])).item() == 0.0
    assert not kto_kl_estimate(x, torch.tensor([-5.0, -5.0])).requires_grad


def test_log1mexp_is_stable_at_both_ends():
    x = torch.tensor([-1e-8, -0.5, -0.7, -30.0], dtype=torch.float64)
    torch.testing.assert_close(log1mexp(x), torch.log(1 - torch.exp(x)), rtol=1e-6, atol=1e-12)
    assert torch.isfinite(log1mexp(torch.tensor([-1e-10]))).all()


def test_reference_free_losses_need_no_reference_and_others_do():
    lp = PairLogps(torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([1.0]), torch.tensor([1.0]))
    for name in ("simpo", "orpo"):
        PAIR_LOSSES[name](lp, LossParams())
    for name in ("dpo", "ipo", "dpo_nll", "rpo"):
        with pytest.raises(ValueError, match="reference"):
            PAIR_LOSSES[name](replace(lp, prompt_embeddings=torch.ones(1, 2)), LossParams())
