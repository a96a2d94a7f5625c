"""The engine's step-level API: sequences that decode together, joining and leaving between steps.

:meth:`Engine.generate <agentladder.models.engine.Engine.generate>` decodes a batch
fixed at the start until its last row ends. A server cannot wait for that: requests
arrive while others are decoding. A :class:`RunningBatch` keeps one batch alive on
the same model and the same forward pass (``Engine._forward``):

- :meth:`RunningBatch.add` prefills new prompts (a left-padded batch of their own,
  once per prompt however many sequences continue it) and merges their key/value
  rows into the running cache (:func:`~agentladder.models.kvcache.stacked_layer`):
  rows are right-aligned, the attention mask hides the zeros to their left and
  position ids are given explicitly, so a row decodes the same tokens whatever
  joined the batch before or after it (tested against ``Engine.generate``);
- :attr:`RunningBatch.logits` holds every row's next-token logits ``(B, V)``; the
  caller samples (each row with its own settings, grammar and seed);
- :meth:`RunningBatch.step` appends each row's chosen token and runs one forward
  pass for all rows;
- :meth:`RunningBatch.remove` drops rows (finished, cancelled) from the batch and
  the cache, and the leading columns no remaining row attends to.

Each row names its LoRA adapter (``None``: the base). On a peft model every
forward passes peft's mixed-batch ``adapter_names``, so specialists of one base
share every decoding step. A merge or a removal copies the cache once; a decode
step writes in place.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import torch

from agentladder.errors import ConfigError
from agentladder.models.engine import BASE_ADAPTER, Engine
from agentladder.models.kvcache import BufferedLayer, in_place_cache, stacked_layer

SLACK = 64
"""Positions a merged cache holds beyond its length before its buffer has to grow."""


class RunningBatch:
    """Sequences decoding together on one engine's model (see the module docstring).

    Rows are named by the caller's keys (any hashable, unique). The model should be in eval
    mode; nothing here switches it.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.keys: list[Hashable] = []
        self.adapters: list[str | None] = []
        self.cache: Any = None
        self.attn: torch.Tensor | None = None
        """``(B, L)`` attention mask over the cached positions."""
        self.pos: torch.Tensor | None = None
        """``(B,)`` position id of each row's next token."""
        self.logits: torch.Tensor | None = None
        """``(B, V)`` next-token logits of every row."""

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def length(self) -> int:
        """Cached positions per row (the widest row's, left padding included)."""
        return 0 if self.attn is None else int(self.attn.shape[1])

    def row(self, key: Hashable) -> int:
        return self.keys.index(key)

    # -- joining -------------------------------------------------------------------------------------
    def add(self, prompts: Sequence[Sequence[int]], keys: Sequence[Sequence[Hashable]],
            adapters: Sequence[str | None] | None = None) -> None:
        """Prefill ``prompts`` and merge them into the batch.

        ``keys[i]`` names the sequences that continue prompt ``i`` (``n`` samples share one prefill);
        ``adapters[i]`` is its adapter (``None``: the base).
        """
        if len(keys) != len(prompts) or (adapters is not None and len(adapters) != len(prompts)):
            raise ConfigError(f"{len(prompts)} prompts, {len(keys)} key lists, "
                              f"{len(adapters) if adapters is not None else 0} adapters")
        if any(not p for p in prompts):
            raise ConfigError("an empty prompt cannot be continued")
        new_keys = [k for ks in keys for k in ks]
        if len(set(new_keys) | set(self.keys)) != len(new_keys) + len(self.keys):
            raise ConfigError("a key names two rows of the batch")
        adapters = list(adapters) if adapters is not None else [None] * len(prompts)
        cache, attn, logits = self._prefill(prompts, adapters)
        copies = torch.tensor([i for i, ks in enumerate(keys) for _ in ks], device=attn.device)
        if len(copies) != len(prompts) or bool((copies != torch.arange(len(prompts), device=attn.device)).any()):
            cache.batch_select_indices(copies)  # (P, ...) -> (S, ...): one row per sequence
            attn, logits = attn[copies], logits[copies]
        parts = [cache.layers]
        if self.cache is not None:
            parts.insert(0, self.cache.layers)
        width = max(int(attn.shape[1]), self.length)
        merged = in_place_cache(self.engine.model.config, len(self) + len(new_keys), width + SLACK)
        merged.layers = [stacked_layer([(layer.keys, layer.values) for layer in group], width + SLACK)
                         for group in zip(*parts, strict=True)]
        self.cache = merged
        new_pos = attn.sum(-1)
        self.attn = _right_aligned([a for a in (self.attn, attn) if a is not None], width)
        self.pos = new_pos if self.pos is None else torch.cat([self.pos, new_pos])
        self.logits = logits if self.logits is None else torch.cat([self.logits, logits])
        self.keys += new_keys
        self.adapters += [adapters[i] for i, ks in enumerate(keys) for _ in ks]

    def _prefill(self, prompts: Sequence[Sequence[int]],
                 adapters: list[str | None]) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """One forward pass over the left-padded prompts: ``(cache, attention mask (P, W), logits (P, V))``."""
        tok, device = self.engine.tokenizer, next(self.engine.model.parameters()).device
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)  # (P, W): [pad | prompt]
        attn = torch.zeros((len(prompts), width), dtype=torch.long)
        for r, p in enumerate(prompts):
            ids[r, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
            attn[r, width - len(p):] = 1
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        ids, attn, pos = ids.to(device), attn.to(device), pos.to(device)
        cache = in_place_cache(self.engine.model.config, len(prompts), width)
        with torch.no_grad():
            logits = self.engine._forward(ids, attn, pos, cache, self._names(adapters), keep=1)
        if not all(isinstance(layer, BufferedLayer) for layer in cache.layers):
            raise ConfigError("continuous batching needs full attention in every layer; this model has "
                              "sliding-window or other cache layers")
        return cache, attn, logits

    # -- decoding --------------------------------------------------------------------------------------
    def step(self, tokens: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Append each row's chosen token (``(B,)``, in row order) and run one forward pass; the new logits."""
        if self.attn is None or self.pos is None:
            raise ConfigError("the batch is empty")
        ids = torch.as_tensor(tokens, dtype=torch.long, device=self.attn.device).reshape(-1, 1)  # (B, 1)
        if ids.shape[0] != len(self):
            raise ConfigError(f"{ids.shape[0]} tokens for a batch of {len(self)}")
        self.attn = torch.cat([self.attn, self.attn.new_ones((len(self), 1))], 1)
        with torch.no_grad():
            self.logits = self.engine._forward(ids, self.attn, self.pos[:, None], self.cache,
                                               self._names(self.adapters))
        self.pos = self.pos + 1
        return self.logits

    def remove(self, keys: Sequence[Hashable]) -> None:
        """Drop the rows named by ``keys`` (unknown keys are ignored) and the columns nobody attends to."""
        gone = set(keys)
        keep = [i for i, k in enumerate(self.keys) if k not in gone]
        if len(keep) == len(self.keys):
            return
        if not keep:
            self.clear()
            return
        assert self.attn is not None and self.pos is not None and self.logits is not None
        idx = torch.tensor(keep, device=self.attn.device)
        attn = self.attn[idx]
        first = int(attn.any(0).nonzero()[0, 0])  # leading columns that only the removed rows used
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[idx, :, first:], layer.values[idx, :, first:]
        self.attn, self.pos, self.logits = attn[:, first:], self.pos[idx], self.logits[idx]
        self.keys = [self.keys[i] for i in keep]
        self.adapters = [self.adapters[i] for i in keep]

    def clear(self) -> None:
        """Drop every row."""
        self.keys, self.adapters = [], []
        self.cache = self.attn = self.pos = self.logits = None

    def _names(self, adapters: Sequence[str | None]) -> list[str] | None:
        """peft's per-row adapter names, or None on a model without adapters."""
        if hasattr(self.engine.model, "peft_config"):
            return [BASE_ADAPTER if a is None else a for a in adapters]
        if any(a is not None for a in adapters):
            raise ConfigError(f"adapters {sorted({a for a in adapters if a})} need a model with LoRA adapters")
        return None


def _right_aligned(masks: list[torch.Tensor], width: int) -> torch.Tensor:
    """Attention masks of different widths stacked, each padded with zeros on the left to ``width``."""
    out = []
    for m in masks:
        if m.shape[1] < width:
            m = torch.cat([m.new_zeros((m.shape[0], width - m.shape[1])), m], 1)
        out.append(m)
    return torch.cat(out)


__all__ = ["SLACK", "RunningBatch"]
