import math

import pytest
import torch

from agentladder.data import Conversation
from agentladder.models.attention import use_packed_attention
from agentladder.models.chat import tokenize_conversation
from agentladder.train.batching import pack_batch, pad_batch
from agentladder.train.batching import pack_batch as _pack
from agentladder.train.losses import IGNORE, masked_token_nll
from agentladder.train.sft import causal_lm_loss
from tests.conftest import CONVERSATIONS


def _rows(tok):
    return [tokenize_conversation(tok, Conversation.model_validate(c)) for c in CONVERSATIONS]


def test_masked_token_nll_hand_worked():
    # Row 1: logits (0, ln 3) -> p(1) = 3/4; row 2 ignored; row 3: uniform over 2 -> p = 1/2.
    logits = torch.tensor([[0.0, math.log(3.0)], [5.0, -5.0], [1.0, 1.0]])
    targets = torch.tensor([1, IGNORE, 0])
    loss_sum, n = masked_token_nll(logits, targets)
    assert n == 2
    assert loss_sum.item() == pytest_approx(-math.log(0.75) - math.log(0.5))


def pytest_approx(x):
    return pytest.approx(x, rel=1e-6)


def test_masked_loss_equals_hand_computed_assistant_only_cross_entropy(tok, model):
    rows = _rows(tok)
    batch = pad_batch(rows, tok.pad_token_id)
    out = causal_lm_loss(model, batch)
    # By hand: full logits, and -log p(next token) only where the next token is an assistant token.
    total, count = 0.0, 0
    with torch.no_grad():
        for r in rows:
            logp = torch.log_softmax(model(torch.tensor([r.input_ids])).logits[0].double(), -1)
            for t in range(len(r) - 1):
                if r.mask[t + 1]:
                    total -= logp[t, r.input_ids[t + 1]].item()
                    count += 1
    assert count == batch["n_units"] > 0
    assert out.loss_sum.item() == pytest_approx(total)
    # Only assistant tokens: a user token changed in the targets changes nothing.
    assert count < sum(len(r) for r in rows) / 2


@pytest.mark.parametrize("per_row_kernel", [False, True], ids=["block-mask", "per-row"])
def test_packing_gives_the_same_loss_and_gradient_as_padding(tok, model, per_row_kernel):
    rows = _rows(tok)
    padded, packed = pad_batch(rows, tok.pad_token_id), pack_batch(rows)
    if per_row_kernel:
        assert use_packed_attention(model)
        packed["_packed_attention"] = True
    assert packed["input_ids"].shape == (1, sum(len(r) for r in rows))
    assert padded["n_units"] == packed["n_units"]

    def loss_and_grad(batch):
        model.zero_grad()
        out = causal_lm_loss(model, batch)
        out.loss_sum.backward()
        return out.loss_sum.item(), [p.grad.clone() for p in model.parameters()]

    l_pad, g_pad = loss_and_grad(padded)
    l_pack, g_pack = loss_and_grad(packed)
    assert l_pack == pytest_approx(l_pad)
    for a, b in zip(g_pad, g_pack, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("per_row_kernel", [False, True], ids=["block-mask", "per-row"])
def test_packed_rows_do_not_attend_across_boundaries(tok, model, per_row_kernel):
    rows = _rows(tok)
    if per_row_kernel:
        use_packed_attention(model)

    def pack_batch(rs):
        return {**_pack(rs), "_packed_attention": per_row_kernel}

    alone = causal_lm_loss(model, pack_batch(rows[2:3])).loss_sum.item()
    after_others = causal_lm_loss(model, pack_batch(rows[:3])).loss_sum.item()
    first_two = causal_lm_loss(model, pack_batch(rows[:2])).loss_sum.item()
    assert after_others - first_two == pytest_approx(alone)


def test_packed_attention_kernel_falls_back_to_sdpa_for_ordinary_batches(tok, model):
    ids = torch.tensor([tok("a plain prompt for generation")["input_ids"]])
    with torch.no_grad():
        before = model(ids).logits
        assert use_packed_attention(model)
        after = model(ids).logits
        out = model.generate(ids, max_new_tokens=3, do_sample=False)
    torch.testing.assert_close(before, after)
    assert out.shape[1] == ids.shape[1] + 3


def test_packed_rows_under_bf16_autocast_match_the_fp32_loss_and_gradient(tok, model):
    # Under bf16 autocast the per-row kernel attends short rows with explicit matmuls (causal_attention).
    rows = _rows(tok)
    padded, packed = pad_batch(rows, tok.pad_token_id), pack_batch(rows)
    assert use_packed_attention(model)
    packed["_packed_attention"] = True

    def loss_and_grad(batch, autocast):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = causal_lm_loss(model, batch)
        out.loss_sum.backward()
        return out.loss_sum.item(), torch.cat([p.grad.flatten() for p in model.parameters()])

    l32, g32 = loss_and_grad(padded, False)
    l16, g16 = loss_and_grad(packed, True)
    assert l16 == pytest.approx(l32, rel=2e-2)
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.99
