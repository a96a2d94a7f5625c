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

import torch
import torch.nn.functional as F

PACKED_ATTENTION = "agentladder_packed_sdpa"


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
        F.scaled_dot_product_attention(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], dropout_p=p,
                                       is_causal=True, scale=scaling)
        for s, e in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    out = torch.cat(parts, dim=2)  # (1, H, T, D)
    return out.transpose(1, 2).contiguous(), None


_registered = False


def register_packed_attention() -> str:
    """Register :data:`PACKED_ATTENTION` with transformers (idempotent); return its name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(PACKED_ATTENTION, packed_sdpa_forward)
        AttentionMaskInterface.register(PACKED_ATTENTION, sdpa_mask)
        _registered = True
    return PACKED_ATTENTION


def use_packed_attention(model) -> bool:
    """Switch a model whose attention is ``sdpa`` to the per-row packed kernel; ``False`` if it cannot."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base.config, "_attn_implementation", None) not in ("sdpa", PACKED_ATTENTION):
        return False
    if not hasattr(base, "set_attn_implementation"):
        return False
    base.set_attn_implementation(register_packed_attention())
    return True
