"""A prompt and two responses in one sequence, the prompt's tokens computed once.

A preference pair is ``(prompt, chosen, rejected)``; a KTO row is ``(prompt,
response, another row's response)`` (the last for KTO's KL estimate). Both are
an :class:`EncodedTriple`: prompt ids and two tails. A micro-batch lays them
end to end in one ``(1, T)`` sequence, ``prompt | tail a | tail b`` per row:

- ``position_ids`` run ``0..P-1`` over the prompt, ``P..`` over tail ``a``, and
  ``P..`` again over tail ``b``, so ``b`` sits where it would after the prompt;
- the attention kernel (:data:`SHARED_PROMPT_ATTENTION`) lets the prompt and
  tail ``a`` attend causally within themselves, and tail ``b`` attend to the
  prompt and causally to itself, never to ``a``;
- the first token of each tail is predicted from the prompt's last position.

So each response gets exactly the log-probabilities it would get after its
prompt alone, while the prompt goes through the model once instead of twice:
on a task whose system prompt is long this removes most of a DPO step's
tokens (tested against separate sequences: ``tests/train/test_preference.py``).

Models whose attention cannot be switched to the kernel (anything but
``sdpa``) get :func:`padded_batch`: ``prompt + a`` and ``prompt + b`` as
separate right-padded rows, the ordinary way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agentladder.models.attention import group_prompt_sdpa_forward, use_attention
from agentladder.models.chat import TokenizedRow

SHARED_PROMPT_ATTENTION = "agentladder_shared_prompt_sdpa"


@dataclass
class EncodedTriple:
    """A prompt and two tails, with which tail tokens are scored."""

    prompt: list[int]
    a_ids: list[int]
    a_mask: list[int]
    """1 where the token is scored (a trained assistant token)."""
    b_ids: list[int]
    b_mask: list[int]
    label: bool | None = None
    """KTO: whether tail ``a`` is desirable; ``None`` for pairs."""
    ref_a: float | None = None
    """Precomputed reference log-probability of tail ``a`` (filled before training)."""
    ref_b: float | None = None

    def __len__(self) -> int:
        return len(self.prompt) + len(self.a_ids) + len(self.b_ids)


def split_shared_prompt(a: TokenizedRow, b: TokenizedRow, max_length: int) -> EncodedTriple | None:
    """The longest common prefix of two tokenised conversations before either's first scored token,
    and the two tails after it, each cut so prompt plus tail fits ``max_length``.

    ``None`` when the prompt leaves no room or a tail has no scored token left.
    """
    first_a = a.mask.index(1) if 1 in a.mask else len(a)
    first_b = b.mask.index(1) if 1 in b.mask else len(b)
    limit = min(first_a, first_b)
    p = 0
    while p < limit and a.input_ids[p] == b.input_ids[p]:
        p += 1
    if p == 0 or p >= max_length:
        return None
    room = max_length - p
    triple = EncodedTriple(a.input_ids[:p], a.input_ids[p:][:room], a.mask[p:][:room],
                           b.input_ids[p:][:room], b.mask[p:][:room])
    if sum(triple.a_mask) == 0 or (triple.b_ids and sum(triple.b_mask) == 0):
        return None
    return triple


def prompt_and_tail(row: TokenizedRow, max_length: int) -> EncodedTriple | None:
    """A single response (KTO without a KL partner): the prompt is everything before the first scored token."""
    if 1 not in row.mask:
        return None
    p = row.mask.index(1)
    if p == 0 or p >= max_length:
        return None
    room = max_length - p
    return EncodedTriple(row.input_ids[:p], row.input_ids[p:][:room], row.mask[p:][:room], [], [])


# -- batches ------------------------------------------------------------------------------------
def _scored(mask: Sequence[int], first_predictor: int, start: int) -> tuple[list[int], list[int]]:
    """Predictor positions and tail indices of the scored tokens of one tail starting at ``start``."""
    pos, idx = [], []
    for j, m in enumerate(mask):
        if m:
            pos.append(first_predictor if j == 0 else start + j - 1)
            idx.append(j)
    return pos, idx


def _refs(rows: Sequence[EncodedTriple]) -> dict:
    if rows[0].ref_a is None:
        return {}
    return {"ref_a": torch.tensor([r.ref_a for r in rows], dtype=torch.float64),
            "ref_b": torch.tensor([r.ref_b if r.ref_b is not None else 0.0 for r in rows], dtype=torch.float64)}


def _common(rows: Sequence[EncodedTriple], n_scored: int, n_tokens: int) -> dict:
    out = {"n_units": len(rows), "n_tokens": n_tokens, "n_trained_tokens": n_scored, **_refs(rows)}
    if rows[0].label is not None:
        out["label"] = torch.tensor([bool(r.label) for r in rows])
    return out


def shared_batch(rows: Sequence[EncodedTriple]) -> dict:
    """One ``(1, T)`` sequence, ``prompt | a | b`` per row (see the module docstring).

    Besides the model inputs it carries ``layout`` (``(R, 4)``: each row's start,
    end of prompt, end of ``a``, end of ``b``), ``keep`` (``(K,)`` positions whose
    logits are needed), ``targets`` (``(K,)`` the tokens they predict) and
    ``segment`` (``(K,)``: ``2 r`` for row ``r``'s tail ``a``, ``2 r + 1`` for ``b``).
    """
    ids: list[int] = []
    positions: list[int] = []
    layout, keep, targets, segment = [], [], [], []
    for r, row in enumerate(rows):
        s = len(ids)
        p, a_end = s + len(row.prompt), s + len(row.prompt) + len(row.a_ids)
        ids += row.prompt + row.a_ids + row.b_ids
        positions += list(range(len(row.prompt) + len(row.a_ids)))
        positions += list(range(len(row.prompt), len(row.prompt) + len(row.b_ids)))
        layout.append((s, p, a_end, a_end + len(row.b_ids)))
        for tail, start, mask, seg in ((row.a_ids, p, row.a_mask, 2 * r), (row.b_ids, a_end, row.b_mask, 2 * r + 1)):
            pos, idx = _scored(mask, p - 1, start)
            keep += pos
            targets += [tail[j] for j in idx]
            segment += [seg] * len(idx)
    return {
        "input_ids": torch.tensor([ids]),
        "position_ids": torch.tensor([positions]),
        "layout": torch.tensor(layout, dtype=torch.long),
        "keep": torch.tensor(keep, dtype=torch.long),
        "targets": torch.tensor(targets, dtype=torch.long),
        "segment": torch.tensor(segment, dtype=torch.long),
        **_common(rows, len(targets), len(ids)),
    }


def padded_batch(rows: Sequence[EncodedTriple], pad_id: int) -> dict:
    """``prompt + a`` and ``prompt + b`` as separate right-padded rows ``(2R, T)`` (rows ``2r``, ``2r + 1``).

    Rows with no tail ``b`` (KTO without a partner) still get an empty second row, so
    segment ``2 r + 1`` is always row ``r``'s ``b``.
    """
    seqs = [seq for row in rows for seq in (row.prompt + row.a_ids, row.prompt + row.b_ids)]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    keep_rows, keep_cols, targets, segment = [], [], [], []
    for k, seq in enumerate(seqs):
        ids[k, : len(seq)] = torch.tensor(seq)
        attn[k, : len(seq)] = 1
        row = rows[k // 2]
        mask = row.a_mask if k % 2 == 0 else row.b_mask
        p = len(row.prompt)
        for j, m in enumerate(mask):
            if m:
                keep_rows.append(k)
                keep_cols.append(p + j - 1)
                targets.append(seq[p + j])
                segment.append(k)
    return {
        "input_ids": ids,
        "attention_mask": attn,
        "keep_rows": torch.tensor(keep_rows, dtype=torch.long),
        "keep": torch.tensor(keep_cols, dtype=torch.long),
        "targets": torch.tensor(targets, dtype=torch.long),
        "segment": torch.tensor(segment, dtype=torch.long),
        **_common(rows, len(targets), int(attn.sum())),
    }


# -- the forward --------------------------------------------------------------------------------
def completion_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probabilities of each row's tails and their scored-token counts.

    Returns ``(logps, counts)``, both ``(R, 2)``: column 0 tail ``a``, column 1 tail ``b``
    (``logps`` fp32, with grad when the model has grad).
    """
    device = next(model.parameters()).device
    n_rows = batch["n_units"]
    ids = batch["input_ids"].to(device)
    keep = batch["keep"].to(device)
    targets = batch["targets"].to(device)
    segment = batch["segment"].to(device)
    if "layout" in batch:
        # The output head runs only at the K positions that predict a scored token.
        hidden = model(input_ids=ids, position_ids=batch["position_ids"].to(device), logits_to_keep=keep,
                       use_cache=False, shared_prompt_layout=batch["layout"].tolist()).logits[0]  # (K, V)
    else:
        logits = model(input_ids=ids, attention_mask=batch["attention_mask"].to(device), use_cache=False).logits
        hidden = logits[batch["keep_rows"].to(device), keep]  # (K, V)
    logits = hidden.float()
    token_logps = logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, -1)  # (K,)
    sums = token_logps.new_zeros(2 * n_rows).index_add(0, segment, token_logps)
    counts = torch.bincount(segment, minlength=2 * n_rows).to(token_logps.dtype)
    return sums.view(n_rows, 2), counts.view(n_rows, 2)


# -- the attention kernel -----------------------------------------------------------------------
def shared_prompt_sdpa_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                               is_causal=None, shared_prompt_layout=None, **kwargs):
    """Attention over ``prompt | a | b`` rows; ``query``: ``(1, H, T, D)``, ``key``/``value``: ``(1, H_kv, T, D)``.

    ``shared_prompt_layout``: a list of ``(start, prompt_end, a_end, b_end)`` per row. Without
    it this is the packed-rows kernel (and so plain ``sdpa`` for ordinary batches).
    Returns ``(1, T, H, D)`` like transformers' attention functions.
    """
    # ``prompt | a | b`` is a group of two answers: each sees the prompt and itself, never the other.
    layout = None if shared_prompt_layout is None else [(s, p, (a, b)) for s, p, a, b in shared_prompt_layout]
    return group_prompt_sdpa_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                     is_causal=is_causal, group_prompt_layout=layout, **kwargs)


def use_shared_prompt_attention(model) -> bool:
    """Switch a model whose attention is ``sdpa`` to the shared-prompt kernel; ``False`` if it cannot."""
    return use_attention(model, SHARED_PROMPT_ATTENTION, shared_prompt_sdpa_forward)
