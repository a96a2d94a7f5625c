"""A key/value cache written in place, optionally starting from a shared prefix.

transformers' ``DynamicCache`` grows each layer by concatenation (``torch.cat``)
at every decoding step, so a step copies the whole cache; at 64 rows of a
600-token prompt that copy is a large part of a step on a CPU. The layers
here allocate one buffer per batch (doubled if a row outgrows it) and write
each step's keys and values into it; ``keys`` and ``values`` are views of the
filled part, so everything that reads a ``DynamicLayer`` reads these.

A batch may start from a prefix's keys and values computed once at batch 1
(the instruction and few-shot examples every prompt of an evaluation shares):
:func:`in_place_cache` broadcasts them into each row's buffer.
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


def stacked_layer(parts: Sequence[tuple[torch.Tensor, torch.Tensor]], capacity: int) -> BufferedLayer:
    """One layer holding the rows of several caches' layers, right-aligned: ``(keys, values)`` parts of
    ``(B_i, H, L_i, D)`` become ``(sum B_i, H, max L_i, D)`` with zeros to the left of the shorter ones.

    Continuous batching merges a new sequence's cache into the running batch this way; the attention
    mask hides the zeros, and position ids are given explicitly, so no row's results change.
    """
    length = max(k.shape[-2] for k, _ in parts)
    rows = sum(k.shape[0] for k, _ in parts)
    k0, v0 = parts[0]
    keys = k0.new_zeros((rows, k0.shape[1], max(capacity, length), k0.shape[-1]))
    values = v0.new_zeros((rows, v0.shape[1], max(capacity, length), v0.shape[-1]))
    start = 0
    for k, v in parts:
        keys[start : start + k.shape[0], :, length - k.shape[-2] : length] = k
        values[start : start + v.shape[0], :, length - v.shape[-2] : length] = v
        start += k.shape[0]
    layer = BufferedLayer(capacity)
    layer.device, layer.is_initialized = keys.device, True
    layer._k, layer._v = keys, values
    layer.keys, layer.values = keys[:, :, :length], values[:, :, :length]
    return layer


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
