"""Key/value caches written in place: from a shared prefix (:func:`in_place_cache`), or in slots (:class:`SlotLayer`).

transformers' ``DynamicCache`` grows each layer by concatenation (``torch.cat``)
at every decoding step, so a step copies the whole cache; at 64 rows of a
600-token prompt that copy is a large part of a step on a CPU. The layers
here allocate one buffer per batch (doubled if a row outgrows it) and write
each step's keys and values into it; ``keys`` and ``values`` are views of the
filled part, so everything that reads a ``DynamicLayer`` reads these.

A batch may start from a prefix's keys and values computed once at batch 1
(the instruction and few-shot examples every prompt of an evaluation shares):
:func:`in_place_cache` broadcasts them into each row's buffer.

A batch whose rows join and leave while it decodes (the server's continuous
batching, :class:`~agentladder.models.batch.RunningBatch`) keeps its rows in the
slots of one buffer per layer instead (:class:`SlotLayer`), so a row joining or
leaving copies that row, not the cache.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

PrefixKV = Sequence[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, the prefix's ``(keys, values)``, each ``(1, H, P, D)``."""


class BufferedLayer(DynamicLayer):
    """A ``DynamicLayer`` whose updates write into a buffer allocated once instead of concatenating.

    ``capacity`` is the positions a row can hold before the buffer doubles. With ``keys`` and
    ``values`` given (``(1 or B, H, P, D)``) the layer starts filled with them, broadcast over
    ``batch`` rows; otherwise the first update allocates the buffer.
    """

    def __init__(self, capacity: int, keys: torch.Tensor | None = None, values: torch.Tensor | None = None,
                 batch: int | None = None):
        super().__init__()
        self._capacity = capacity
        if keys is not None and values is not None:
            self.device = keys.device
            self.is_initialized = True
            self._fill(keys, values, batch or keys.shape[0], capacity)

    def _fill(self, keys: torch.Tensor, values: torch.Tensor, batch: int, capacity: int) -> None:
        _, heads, n, dim = keys.shape  # (1 or B, H, P, D)
        self._k = keys.new_empty((batch, heads, max(capacity, n), dim))
        self._v = values.new_empty((batch, heads, max(capacity, n), values.shape[-1]))
        self._k[:, :, :n] = keys  # broadcast over the batch when the prefix has one row
        self._v[:, :, :n] = values
        self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.device = key_states.device
            self.is_initialized = True
            self._fill(key_states[:, :, :0], value_states[:, :, :0], key_states.shape[0], self._capacity)
        # ``keys`` is a leading view of the buffer unless something replaced it (a batch selection or
        # repeat makes a new tensor; a crop keeps the view): then it moves into a new buffer once.
        if self.keys.data_ptr() != self._k.data_ptr() or self.keys.shape[0] != self._k.shape[0]:
            self._fill(self.keys, self.values, self.keys.shape[0], self._k.shape[-2])
        n, new = self.keys.shape[-2], key_states.shape[-2]
        if n + new > self._k.shape[-2]:
            self._fill(self.keys, self.values, self.keys.shape[0], 2 * (n + new))
        self._k[:, :, n : n + new] = key_states
        self._v[:, :, n : n + new] = value_states
        self.keys, self.values = self._k[:, :, : n + new], self._v[:, :, : n + new]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows ``indices`` (in that order), moved to the front of the same buffer.

        ``DynamicLayer`` would make a new tensor of the kept rows, which the next ``update`` then
        copies into a new buffer: two copies and an allocation each time rows finish. Here the kept
        rows' filled positions are gathered once (``(K, H, n, D)``) and written back in place.
        """
        if not self.is_initialized or self.keys.data_ptr() != self._k.data_ptr():
            super().batch_select_indices(indices)
            return
        n, m = self.keys.shape[-2], len(indices)
        self._k[:m, :, :n] = self.keys[indices]
        self._v[:m, :, :n] = self.values[indices]
        self._k, self._v = self._k[:m], self._v[:m]
        self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]


class SlotLayer(DynamicLayer):
    """A layer whose rows live in the slots of a buffer allocated once, for a batch that rows join and leave.

    The buffers are ``(slots, H, capacity, D)``; the batch's rows are slots ``[0, rows)`` and its
    cached positions columns ``[start, end)``: :attr:`keys` and :attr:`values` are views of that
    block. A decoding step writes its column in place; the caller moves rows between slots and
    the window's ends (:class:`~agentladder.models.batch.RunningBatch`), so a row leaving copies
    one row, not the cache. Buffers start zeroed: columns outside a row's own are masked, and
    their stale values are finite.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.device, self.is_initialized = keys.device, True
        self._k, self._v = keys, values
        self.rows = self.start = self.end = 0
        self.view()

    def view(self) -> None:
        self.keys = self._k[: self.rows, :, self.start : self.end]
        self.values = self._v[: self.rows, :, self.start : self.end]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        new = key_states.shape[-2]
        self._k[: self.rows, :, self.end : self.end + new] = key_states
        self._v[: self.rows, :, self.end : self.end + new] = value_states
        self.end += new
        self.view()
        return self.keys, self.values


def in_place_cache(config: Any, batch: int, capacity: int, prefix: PrefixKV | None = None) -> DynamicCache:
    """A cache for ``batch`` rows of up to ``capacity`` positions, holding ``prefix`` when given.

    Layers of full attention are :class:`BufferedLayer`; other layer types the model's config
    asks for (sliding windows) stay transformers' own, filled with the prefix by ``update``.
    """
    cache = DynamicCache(config=config) if hasattr(config, "get_text_config") else DynamicCache()
    if not cache.layers:  # layer types unknown: one buffered layer per model layer, made as they are reached
        cache.layer_class_to_replicate = functools.partial(BufferedLayer, capacity)  # type: ignore[assignment]
        if prefix is not None:
            cache.layers = [BufferedLayer(capacity, k, v, batch) for k, v in prefix]
        return cache
    for i, layer in enumerate(cache.layers):
        k, v = prefix[i] if prefix is not None else (None, None)
        if type(layer) is DynamicLayer:
            cache.layers[i] = BufferedLayer(capacity, k, v, batch)
        elif k is not None and v is not None:
            layer.update(k.expand(batch, -1, -1, -1).contiguous(), v.expand(batch, -1, -1, -1).contiguous())
    return cache


def layer_states(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(keys, values)`` of every layer of a filled cache (the prefix's, to keep)."""
    return [(layer.keys, layer.values) for layer in cache.layers]
