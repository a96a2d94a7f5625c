"""Turning tokenised rows into model inputs: padded batches and padding-free packing.

Padded: ``(B, T)`` right-padded ids, an attention mask and labels.

Packed: the rows of a micro-batch laid end to end in one ``(1, sum T_i)``
sequence with ``position_ids`` restarting at 0 for each row and no attention
mask; transformers reads the restarts as sequence boundaries and attends
within each row only, so no compute is spent on padding. The first token of
each row gets no label, so no row is trained to predict across a boundary
(in a padded batch that token is never a target either, so both give the
same loss).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from agentladder.models.chat import TokenizedRow
from agentladder.train.losses import IGNORE


def _labels(row: TokenizedRow) -> list[int]:
    return [t if m else IGNORE for t, m in zip(row.input_ids, row.mask, strict=True)]


def _stats(rows: Sequence[TokenizedRow]) -> dict[str, int]:
    # A row's first token is never a target, so it does not count.
    trained = sum(sum(r.mask[1:]) for r in rows)
    return {"n_units": trained, "n_trained_tokens": trained, "n_tokens": sum(len(r) for r in rows)}


def pad_batch(rows: Sequence[TokenizedRow], pad_id: int) -> dict:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r)
        ids[i, :n] = torch.tensor(r.input_ids)
        labels[i, :n] = torch.tensor(_labels(r))
        attn[i, :n] = 1
    return {"input_ids": ids, "attention_mask": attn, "labels": labels, **_stats(rows)}


def pack_batch(rows: Sequence[TokenizedRow]) -> dict:
    ids, labels, positions, bounds = [], [], [], [0]
    for r in rows:
        ids.extend(r.input_ids)
        row_labels = _labels(r)
        row_labels[0] = IGNORE
        labels.extend(row_labels)
        positions.extend(range(len(r)))
        bounds.append(bounds[-1] + len(r))
    return {
        "input_ids": torch.tensor([ids]),
        "position_ids": torch.tensor([positions]),
        "cu_seq_lens": torch.tensor(bounds, dtype=torch.int32),
        "labels": torch.tensor([labels]),
        **_stats(rows),
    }


def collator(pad_id: int, packing: bool):
    """A ``collate(rows) -> batch`` for the training loop."""
    if packing:
        return pack_batch
    return lambda rows: pad_batch(rows, pad_id)
