"""Attention over packed sequences, one row at a time.

A packed micro-batch lays rows end to end in one sequence. transformers'
stock ``sdpa`` path handles that with a block-diagonal ``(T, T)`` mask, so
the attention still costs ``T^2`` for a pack of total length ``T``, and a
masked kernel is slower than a causal one. With the boundaries known
(``cu_seq_lens``, the cumulative row lengths, as flash-attention's varlen
kernels take them) each row attends causally to itself only:
``sum_i T_i^2`` work instead of ``T^2``, with the unmasked causal kernel.

:data:`PACKED_ATTENTION` is registered with transformers' attention and
mask interfaces; without ``cu_seq_lens`` it is exactly ``sdpa``, so a model
switched to it generates and evaluates as before.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

PACKED_ATTENTION = "agentladder_packed_sdpa"
GROUP_PROMPT_ATTENTION = "agentladder_group_prompt_sdpa"


EXPLICIT_MAX_LEN = 256
"""Longest bfloat16 CPU row attended with explicit matmuls instead of the fused kernel (see :func:`causal_attention`)."""


@functools.lru_cache(maxsize=EXPLICIT_MAX_LEN)
def _future_mask(t: int) -> torch.Tensor:
    """``(t, t)`` bool, true above the diagonal: the keys a causal row may not see."""
    return torch.ones(t, t, dtype=torch.bool).triu(1)


def causal_attention(query, key, value, dropout_p: float = 0.0, scale: float | None = None) -> torch.Tensor:
    """Causal attention of one row, ``(1, H, T, D)`` in and out.

    ``F.scaled_dot_product_attention`` except for short rows on a CPU in
    bfloat16 or under bfloat16 autocast (mixed-precision training of chat-length rows): there the fused kernel's
    backward costs more than two small matmuls and a softmax (run in fp32),
    about a quarter of a LoRA step of SmolLM2-135M on 100-token rows.
    """
    t = query.shape[-2]
    device = query.device.type
    bf16 = query.dtype == torch.bfloat16 or (torch.is_autocast_enabled(device)
                                            and torch.get_autocast_dtype(device) == torch.bfloat16)
    if device != "cpu" or not bf16 or dropout_p > 0.0 or t > EXPLICIT_MAX_LEN or key.shape[-2] != t:
        return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout_p, is_causal=True, scale=scale)
    scores = (query @ key.transpose(-1, -2)).float() * (query.shape[-1] ** -0.5 if scale is None else scale)
    weights = scores.masked_fill(_future_mask(t), float("-inf")).softmax(-1).to(value.dtype)
    return weights @ value


def packed_sdpa_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None,
                        cu_seq_lens_q=None, **kwargs):
    """``query``: ``(1, H, T, D)``; ``key``/``value``: ``(1, H_kv, T, D)``; ``cu_seq_lens_q``: ``(R+1,)``.

    Returns ``(1, T, H, D)`` like transformers' ``sdpa_attention_forward``.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if cu_seq_lens_q is None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    groups = query.shape[1] // key.shape[1]
    if groups > 1:  # grouped-query attention: share each key/value head with its query heads
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    bounds = cu_seq_lens_q.tolist()
    p = dropout if module.training else 0.0
    parts = [
        causal_attention(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], dropout_p=p, scale=scaling)
        for s, e in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    out = torch.cat(parts, dim=2)  # (1, H, T, D)
    return out.transpose(1, 2).contiguous(), None


_registered: set[str] = set()


def register_attention(name: str, forward) -> str:
    """Register ``forward`` with transformers' attention and mask interfaces as ``name`` (once); return ``name``."""
    if name not in _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(name, forward)
        AttentionMaskInterface.register(name, sdpa_mask)
        _registered.add(name)
    return name


def use_attention(model, name: str, forward) -> bool:
    """Switch a model whose attention is ``sdpa`` (or one of ours) to the kernel ``forward``; ``False`` if it cannot."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base.config, "_attn_implementation", None) not in ("sdpa", PACKED_ATTENTION, name):
        return False
    if not hasattr(base, "set_attn_implementation"):
        return False
    base.set_attn_implementation(register_attention(name, forward))
    return True


def register_packed_attention() -> str:
    """Register :data:`PACKED_ATTENTION` with transformers (idempotent); return its name."""
    return register_attention(PACKED_ATTENTION, packed_sdpa_forward)


def use_packed_attention(model) -> bool:
    """Switch a model whose attention is ``sdpa`` to the per-row packed kernel; ``False`` if it cannot."""
    return use_attention(model, PACKED_ATTENTION, packed_sdpa_forward)


# -- one prompt, several answers ----------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _tails_mask(n_prompt: int, ends: tuple[int, ...]) -> torch.Tensor:
    """``(N, P + N)`` bool: each response token sees the prompt, and its own response causally."""
    n = ends[-1]
    visible = torch.zeros(n, n_prompt + n, dtype=torch.bool)
    visible[:, :n_prompt] = True
    start = 0
    for end in ends:
        visible[start:end, n_prompt + start : n_prompt + end] = torch.ones(end - start, end - start,
                                                                          dtype=torch.bool).tril()
        start = end
    return visible


def group_prompt_sdpa_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                              is_causal=None, group_prompt_layout=None, **kwargs):
    """Attention over ``prompt | y_1 | ... | y_k`` groups; ``query``: ``(1, H, T, D)``, ``key``/``value``: ``(1, H_kv, T, D)``.

    Without ``group_prompt_layout`` this is the packed-rows kernel (plain ``sdpa`` for
    ordinary batches and for generation). Returns ``(1, T, H, D)``.
    """
    if group_prompt_layout is None:
        return packed_sdpa_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                   is_causal=is_causal, **kwargs)
    groups = query.shape[1] // key.shape[1]
    if groups > 1:  # grouped-query attention: share each key/value head with its query heads
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    p_drop = dropout if module.training else 0.0
    parts = []
    for s, p, ends in group_prompt_layout:
        parts.append(F.scaled_dot_product_attention(query[:, :, s:p], key[:, :, s:p], value[:, :, s:p],
                                                    dropout_p=p_drop, is_causal=True, scale=scaling))
        e = ends[-1]
        if e > p:
            visible = _tails_mask(p - s, tuple(x - p for x in ends)).to(query.device)
            k = torch.cat([key[:, :, s:p], key[:, :, p:e]], dim=2)
            v = torch.cat([value[:, :, s:p], value[:, :, p:e]], dim=2)
            parts.append(F.scaled_dot_product_attention(query[:, :, p:e], k, v, attn_mask=visible,
                                                        dropout_p=p_drop, scale=scaling))
    out = torch.cat(parts, dim=2)  # (1, H, T, D)
    return out.transpose(1, 2).contiguous(), None


def use_group_prompt_attention(model) -> bool:
    """Switch a model whose attention is ``sdpa`` to the group kernel; ``False`` if it cannot."""
    return use_attention(model, GROUP_PROMPT_ATTENTION, group_prompt_sdpa_forward)
