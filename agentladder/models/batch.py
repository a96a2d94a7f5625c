"""The engine's step-level API: sequences that decode together, joining and leaving between steps.

:meth:`Engine.generate <agentladder.models.engine.Engine.generate>` decodes a batch
fixed at the start until its last row ends. A server cannot wait for that: requests
arrive while others are decoding. A :class:`RunningBatch` keeps one batch alive on
the same model and the same forward pass (``Engine._forward``):

- :meth:`RunningBatch.add` prefills new prompts (a left-padded batch of their own,
  once per prompt however many sequences continue it) and writes their key/value
  rows into free slots of the running cache, right-aligned with the running rows:
  the attention mask hides the columns to their left and position ids are given
  explicitly, so a row decodes the same tokens whatever joined the batch before or
  after it (tested against ``Engine.generate``);
- :attr:`RunningBatch.logits` holds every row's next-token logits ``(B, V)``; the
  caller samples (each row with its own settings, grammar and seed);
- :meth:`RunningBatch.step` appends each row's chosen token and runs one forward
  pass for all rows, writing the new column in place;
- :meth:`RunningBatch.remove` drops rows (finished, cancelled): the last rows move
  into the freed slots, and the window of cached columns starts at the first one a
  remaining row attends to.

The cache (:class:`~agentladder.models.kvcache.SlotLayer`) is one buffer per layer,
``(slots, H, capacity, D)``, allocated once and reallocated only when the rows or the
columns outgrow it (doubling), so joining copies the new rows and leaving copies at
most the rows that move, never the whole cache. Each row names its LoRA adapter
(``None``: the base); on a peft model every forward passes peft's mixed-batch
``adapter_names``, so specialists of one base share every decoding step.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import torch

from agentladder.errors import ConfigError
from agentladder.models.engine import BASE_ADAPTER, Engine
from agentladder.models.kvcache import BufferedLayer, SlotLayer, in_place_cache

SLACK = 64
"""Columns a new buffer holds beyond what is needed now, before decoding steps fill them."""


class RunningBatch:
    """Sequences decoding together on one engine's model (see the module docstring).

    Rows are named by the caller's keys (any hashable, unique); ``slots`` is how many rows the
    first buffer holds (it grows when more join). The model should be in eval mode.
    """

    def __init__(self, engine: Engine, *, slots: int = 1):
        self.engine = engine
        self.slots = slots
        self.keys: list[Hashable] = []
        self.adapters: list[str | None] = []
        self.cache: Any = None
        self.attn: torch.Tensor | None = None
        """``(B, L)`` attention mask over the cached window."""
        self.pos: torch.Tensor | None = None
        """``(B,)`` position id of each row's next token."""
        self.logits: torch.Tensor | None = None
        """``(B, V)`` next-token logits of every row."""

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def length(self) -> int:
        """Cached columns per row (the widest row's, left padding included)."""
        return 0 if self.attn is None else int(self.attn.shape[1])

    @property
    def _layers(self) -> list[SlotLayer]:
        return self.cache.layers if self.cache is not None else []

    # -- joining -------------------------------------------------------------------------------------
    def add(self, prompts: Sequence[Sequence[int]], keys: Sequence[Sequence[Hashable]],
            adapters: Sequence[str | None] | None = None) -> None:
        """Prefill ``prompts`` and add them to the batch.

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
        attn, logits = attn[copies], logits[copies]
        rows, width = len(self), int(attn.shape[1])
        span = self.length
        left = max(0, width - span)  # columns the new prompts reach left of the window
        need_rows = rows + len(new_keys)
        if self.cache is None:
            self._allocate(cache.layers, max(self.slots, need_rows), left, width + SLACK)
        elif need_rows > self._layers[0]._k.shape[0] or left > self._layers[0].start:
            old = self._layers[0]
            self._relayout(max(need_rows, 2 * old._k.shape[0]) if need_rows > old._k.shape[0] else old._k.shape[0],
                           left, max(old._k.shape[2], left + span + SLACK))
        for layer, new in zip(self._layers, cache.layers, strict=True):
            k, v = new.keys[copies], new.values[copies]  # (S, H, W, D): one row per sequence
            layer._k[rows:need_rows, :, layer.end - width : layer.end] = k
            layer._v[rows:need_rows, :, layer.end - width : layer.end] = v
            layer.rows, layer.start = need_rows, layer.start - left
            layer.view()
        width_now = span + left
        self.attn = torch.cat([_pad_left(a, width_now) for a in (self.attn, attn) if a is not None])
        new_pos = attn.sum(-1)
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

    def _allocate(self, like: Sequence[Any], slots: int, left: int, capacity: int) -> None:
        """Empty buffers shaped after a prefill's layers, the window starting at column ``left``."""
        layers = []
        for src in like:
            _, heads, _, dim = src.keys.shape
            layer = SlotLayer(src.keys.new_zeros((slots, heads, capacity, dim)),
                              src.values.new_zeros((slots, heads, capacity, src.values.shape[-1])))
            layer.start = layer.end = left
            layer.view()
            layers.append(layer)
        self.cache = in_place_cache(self.engine.model.config, slots, capacity)
        self.cache.layers = layers

    def _relayout(self, slots: int, left: int, capacity: int) -> None:
        """Copy the window into new buffers of ``slots`` rows and ``capacity`` columns, starting at ``left``."""
        for i, old in enumerate(self._layers):
            span = old.end - old.start
            k = old._k.new_zeros((slots, old._k.shape[1], capacity, old._k.shape[-1]))
            v = old._v.new_zeros((slots, old._v.shape[1], capacity, old._v.shape[-1]))
            k[: old.rows, :, left : left + span] = old._k[: old.rows, :, old.start : old.end]
            v[: old.rows, :, left : left + span] = old._v[: old.rows, :, old.start : old.end]
            layer = SlotLayer(k, v)
            layer.rows, layer.start, layer.end = old.rows, left, left + span
            layer.view()
            self.cache.layers[i] = layer

    # -- decoding --------------------------------------------------------------------------------------
    def step(self, tokens: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Append each row's chosen token (``(B,)``, in row order) and run one forward pass; the new logits."""
        if self.attn is None or self.pos is None:
            raise ConfigError("the batch is empty")
        ids = torch.as_tensor(tokens, dtype=torch.long, device=self.attn.device).reshape(-1, 1)  # (B, 1)
        if ids.shape[0] != len(self):
            raise ConfigError(f"{ids.shape[0]} tokens for a batch of {len(self)}")
        first = self._layers[0]
        if first.end + 1 > first._k.shape[2]:  # the buffer is full: move the window to its start, doubled
            self._relayout(first._k.shape[0], 0, 2 * (self.length + 1) + SLACK)
        self.attn = torch.cat([self.attn, self.attn.new_ones((len(self), 1))], 1)
        with torch.no_grad():
            self.logits = self.engine._forward(ids, self.attn, self.pos[:, None], self.cache,
                                               self._names(self.adapters))
        self.pos = self.pos + 1
        return self.logits

    def remove(self, keys: Sequence[Hashable]) -> None:
        """Drop the rows named by ``keys`` (unknown keys are ignored); see the module docstring."""
        gone = set(keys)
        dropped = [i for i, k in enumerate(self.keys) if k in gone]
        if not dropped:
            return
        n = len(self) - len(dropped)
        if n == 0:
            self.clear()
            return
        assert self.attn is not None and self.pos is not None and self.logits is not None
        holes = [i for i in dropped if i < n]
        movers = [i for i in range(n, len(self)) if self.keys[i] not in gone]
        order = list(range(n))
        for hole, mover in zip(holes, movers, strict=True):
            order[hole] = mover
        start, end = self._layers[0].start, self._layers[0].end
        if holes:  # the last rows move into the freed slots
            src, dst = torch.tensor(movers), torch.tensor(holes)
            for layer in self._layers:
                layer._k[dst, :, start:end] = layer._k[src, :, start:end]
                layer._v[dst, :, start:end] = layer._v[src, :, start:end]
        idx = torch.tensor(order, device=self.attn.device)
        attn = self.attn[idx]
        first = int(attn.any(0).nonzero()[0, 0])  # leading columns that only the removed rows used
        for layer in self._layers:
            layer.rows, layer.start = n, start + first
            layer.view()
        self.attn, self.pos, self.logits = attn[:, first:], self.pos[idx], self.logits[idx]
        self.keys = [self.keys[i] for i in order]
        self.adapters = [self.adapters[i] for i in order]

    def clear(self) -> None:
        """Drop every row (and the buffers)."""
        self.keys, self.adapters = [], []
        self.cache = self.attn = self.pos = self.logits = None

    def _names(self, adapters: Sequence[str | None]) -> list[str] | None:
        """peft's per-row adapter names, or None on a model without adapters."""
        if hasattr(self.engine.model, "peft_config"):
            return [BASE_ADAPTER if a is None else a for a in adapters]
        if any(a is not None for a in adapters):
            raise ConfigError(f"adapters {sorted({a for a in adapters if a})} need a model with LoRA adapters")
        return None


def _pad_left(mask: torch.Tensor, width: int) -> torch.Tensor:
    """An attention mask padded with zeros on the left to ``width`` columns."""
    if mask.shape[1] >= width:
        return mask
    return torch.cat([mask.new_zeros((mask.shape[0], width - mask.shape[1])), mask], 1)


__all__ = ["SLACK", "RunningBatch"]
