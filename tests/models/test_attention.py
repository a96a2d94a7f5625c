import pytest
import torch
import torch.nn.functional as F

from agentladder.models.attention import EXPLICIT_MAX_LEN, causal_attention


def _qkv(t: int, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 3, t, 8, generator=g).to(dtype).requires_grad_() for _ in range(3)]


def _reference(q, k, v, scale=None):
    """Causal attention by hand in float64."""
    q, k, v = (x.detach().double().requires_grad_() for x in (q, k, v))
    t = q.shape[-2]
    scores = q @ k.transpose(-1, -2) * (q.shape[-1] ** -0.5 if scale is None else scale)
    scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1) @ v, (q, k, v)


def _grads(out, inputs, weights):
    return torch.autograd.grad((out.double() * weights).sum(), inputs)


@pytest.mark.parametrize("scale", [None, 0.2])
def test_explicit_bf16_rows_match_causal_attention_by_hand(scale):
    q, k, v = _qkv(24, torch.bfloat16)
    out = causal_attention(q, k, v, scale=scale)
    ref, ref_inputs = _reference(q, k, v, scale)
    assert out.dtype == torch.bfloat16 and out.shape == q.shape
    torch.testing.assert_close(out.double(), ref, atol=2e-2, rtol=2e-2)
    w = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for got, want in zip(_grads(out, (q, k, v), w), _grads(ref, ref_inputs, w), strict=True):
        torch.testing.assert_close(got.double(), want, atol=5e-2, rtol=5e-2)


def test_under_bf16_autocast_fp32_rows_take_the_explicit_path_and_match():
    q, k, v = _qkv(16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = causal_attention(q, k, v)
        fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    ref, _ = _reference(q, k, v)
    torch.testing.assert_close(out.double(), ref, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(out.float(), fused.float(), atol=2e-2, rtol=2e-2)


def test_the_first_token_attends_only_to_itself():
    q, k, v = _qkv(8, torch.bfloat16)
    out = causal_attention(q, k, v)
    torch.testing.assert_close(out[:, :, 0], v[:, :, 0])


@pytest.mark.parametrize("case", ["fp32", "long", "dropout"])
def test_other_rows_use_the_fused_kernel(case, monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    dtype = torch.float32 if case == "fp32" else torch.bfloat16
    q, k, v = _qkv(EXPLICIT_MAX_LEN + 1 if case == "long" else 16, dtype)
    causal_attention(q, k, v, dropout_p=0.1 if case == "dropout" else 0.0)
    assert len(calls) == 1 and calls[0]["is_causal"] is True
