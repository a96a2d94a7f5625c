"""Relative Preference Optimization (Yin et al. 2024, arXiv:2402.10958) against its formula, worked by hand.

``h_ij = (pi_w,i - ref_w,i) - (pi_l,j - ref_l,j)``; ``w_ij = softmax_j(-(1 - cos(e_i, e_j)) / tau)``;
``loss_i = mean_j -log sigma(beta w_ij h_ij)``.
"""

from __future__ import annotations

import math

import pytest
import torch

from agentladder.train.preference_losses import (
    PAIR_LOSSES,
    LossParams,
    PairLogps,
    dpo_loss,
    prompt_weights,
    rpo_loss,
)


def _pairs(chosen, rejected, embeddings, ref_chosen=None, ref_rejected=None) -> PairLogps:
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    n = len(chosen)
    return PairLogps(t(chosen).requires_grad_(True), t(rejected).requires_grad_(True), t([3.0] * n), t([3.0] * n),
                     t(ref_chosen or [0.0] * n), t(ref_rejected or [0.0] * n), t(embeddings))


def test_two_pairs_with_unrelated_prompts_by_hand():
    # Orthogonal prompt embeddings: cosine distance 0 to itself, 1 to the other. With tau 0.5 the weights are
    # softmax([0, -2]) = [1 / (1 + e^-2), e^-2 / (1 + e^-2)] = [0.880797..., 0.119202...].
    w_same, w_other = 1 / (1 + math.exp(-2)), math.exp(-2) / (1 + math.exp(-2))
    lp = _pairs(chosen=[-1.0, -2.2], rejected=[-3.3, -1.6], embeddings=[[1.0, 0.0], [0.0, 2.0]],
                ref_chosen=[-1.5, -2.0], ref_rejected=[-3.0, -2.0])
    # log-ratios: chosen [0.5, -0.2], rejected [-0.3, 0.4]; contrasts h = [[0.8, 0.1], [0.1, -0.6]]
    torch.testing.assert_close(prompt_weights(lp.prompt_embeddings, 0.5),
                               torch.tensor([[w_same, w_other], [w_other, w_same]]), rtol=0, atol=1e-7)
    out = rpo_loss(lp, LossParams(beta=0.1, rpo_temperature=0.5))
    by_hand = [
        (math.log1p(math.exp(-0.1 * w_same * 0.8)) + math.log1p(math.exp(-0.1 * w_other * 0.1))) / 2,
        (math.log1p(math.exp(-0.1 * w_other * 0.1)) + math.log1p(math.exp(-0.1 * w_same * -0.6))) / 2,
    ]
    torch.testing.assert_close(out.loss, torch.tensor(by_hand, dtype=torch.float64), rtol=0, atol=1e-7)
    torch.testing.assert_close(out.loss, torch.tensor([0.675543577722, 0.706235753709], dtype=torch.float64),
                               rtol=0, atol=1e-8)  # the weights are computed in float32
    torch.testing.assert_close(out.chosen_reward, torch.tensor([0.05, -0.02], dtype=torch.float64))
    # d loss_0 / d pi_w,0 = -(1/2) sigma(-beta w h) beta w over both contrasts of row 0.
    out.loss[0].backward()
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    grad = -0.5 * (sig(-0.1 * w_same * 0.8) * 0.1 * w_same + sig(-0.1 * w_other * 0.1) * 0.1 * w_other)
    assert lp.chosen.grad[0].item() == pytest.approx(grad, abs=1e-8) and lp.chosen.grad[1].item() == 0.0


def test_against_a_plain_loop_on_random_inputs():
    g = torch.Generator().manual_seed(0)
    B, D = 5, 7
    lp = PairLogps(-torch.rand(B, generator=g, dtype=torch.float64) * 9, -torch.rand(B, generator=g, dtype=torch.float64) * 9,
                   torch.full((B,), 4.0), torch.full((B,), 4.0), -torch.rand(B, generator=g, dtype=torch.float64) * 9,
                   -torch.rand(B, generator=g, dtype=torch.float64) * 9, torch.randn(B, D, generator=g, dtype=torch.float64))
    p = LossParams(beta=0.3, rpo_temperature=0.25)
    e = lp.prompt_embeddings.tolist()

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    expected = []
    for i in range(B):
        raw = [math.exp(-(1 - cos(e[i], e[j])) / 0.25) for j in range(B)]
        w = [r / sum(raw) for r in raw]
        h = [(lp.chosen[i] - lp.ref_chosen[i] - lp.rejected[j] + lp.ref_rejected[j]).item() for j in range(B)]
        expected.append(sum(math.log1p(math.exp(-0.3 * w[j] * h[j])) for j in range(B)) / B)
    torch.testing.assert_close(PAIR_LOSSES["rpo"](lp, p).loss, torch.tensor(expected, dtype=torch.float64),
                               rtol=1e-6, atol=1e-9)


def test_one_pair_is_dpo_and_identical_prompts_weigh_alike():
    lp = _pairs(chosen=[-1.0], rejected=[-2.0], embeddings=[[0.3, 0.4]], ref_chosen=[-1.2], ref_rejected=[-1.9])
    torch.testing.assert_close(rpo_loss(lp, LossParams(beta=0.1)).loss, dpo_loss(lp, LossParams(beta=0.1)).loss)
    same = prompt_weights(torch.ones(3, 4), 0.5)
    torch.testing.assert_close(same, torch.full((3, 3), 1 / 3))


def test_rpo_needs_prompt_embeddings():
    lp = _pairs(chosen=[-1.0], rejected=[-2.0], embeddings=[[1.0]])
    lp.prompt_embeddings = None
    with pytest.raises(ValueError, match="embedding of each pair's prompt"):
        rpo_loss(lp, LossParams())


def test_the_docs_example_runs_and_prints_the_hand_worked_loss(capsys):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "preference.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", doc, re.DOTALL) if "rpo_loss" in b)
    exec(compile(block, "docs/preference.md", "exec"), {})
    assert "tensor([0.6755, 0.7062])" in capsys.readouterr().out
