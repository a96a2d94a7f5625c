"""Batched generation from a local model, for distillation and evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from agentladder.data.schema import Message
from agentladder.models.chat import prompt_ids


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[Sequence[Message]],
    *,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int | None = None,
    progress=None,
) -> list[str]:
    """Complete each prompt (a list of messages) with the chat template; return the new text.

    Prompts are left-padded in batches of ``batch_size``, sorted by length so
    batches waste little padding; ``temperature=0`` is greedy decoding.
    ``progress`` is called with the number of prompts finished after each batch.
    """
    if seed is not None:
        torch.manual_seed(seed)
    model.eval()
    device = next(model.parameters()).device
    encoded = [prompt_ids(tokenizer, p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        attn = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            seq = encoded[i]
            ids[row, width - len(seq) :] = torch.tensor(seq)
            attn[row, width - len(seq) :] = 1
        kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        gen = model.generate(input_ids=ids.to(device), attention_mask=attn.to(device), **kwargs)
        for row, i in enumerate(idx):
            out[i] = tokenizer.decode(gen[row, width:], skip_special_tokens=True).strip()
        if progress is not None:
            progress(len(idx))
    return out
