"""The local-model provider: batched greedy generation with a shared-prefix cache and early stop.

Three things make evaluation on a CPU affordable:

- **Shared-prefix cache.** Every prompt of an evaluation starts with the same
  system instruction and few-shot examples (about 560 of 600 tokens at 3
  shots), so their keys and values are computed once and copied into each
  batch; a batch only prefills the rows' own tokens. The row layout is
  ``[prefix | padding | row tokens]``: the attention mask hides the padding
  and the position ids (the mask's running count) stay those of the unpadded
  prompt, so the output is the same as without the cache (tested).
- **A cache written in place.** transformers' ``DynamicCache`` copies its
  whole cache at every decoding step (``torch.cat``), which at 64 rows of a
  600-token prompt is most of the step; a batch that shares a prefix gets a
  cache whose layers write each step's keys and values into a buffer
  allocated once (``_batch_cache``). Same outputs, 2.3 times the rows a
  second on the demo's 3-shot baseline (``bench/eval_cache.py``).
- **Stop after the JSON.** With ``stop_at_json`` a row ends as soon as the
  braces it generated balance again after the first ``{``, so a model that
  keeps writing after its object (prose, a second object) costs no more.

Measured on 16 rows at 3 shots on a 2-core CPU: 0.245 rows/s with the cache,
0.129 without (``docs/evals.md``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

from agentladder.evals.providers import ProgressFn, Prompt, Provider

MIN_SHARED_PREFIX = 16
"""Shorter shared prefixes are not worth a cache copy per batch."""


class LocalProvider(Provider):
    """A local model (alias, folder, LoRA run folder or hub id) with batched generation.

    Prompts are rendered with the model's chat template and sorted by length
    into batches of ``batch_size``. A LoRA run folder is merged into its base
    after loading: the same outputs, without the adapters' extra matmuls.
    ``prefix_cache`` turns the shared-prefix cache off (see the module docstring).
    """

    def __init__(self, spec: str | None = None, *, model: Any = None, tokenizer: Any = None,
                 batch_size: int = 8, dtype: str = "float32", prefix_cache: bool = True, name: str | None = None):
        if spec is None and (model is None or tokenizer is None):
            raise ValueError("give a model spec, or a model and its tokenizer")
        self.spec = spec
        self.name = name or spec or type(model).__name__
        self.batch_size = batch_size
        self.dtype = dtype
        self.prefix_cache = prefix_cache
        self.model, self.tokenizer = model, tokenizer
        self.load_seconds = 0.0
        self._brace_counts = None
        self._prefix: tuple[tuple[int, ...], Any] | None = None

    def prepare(self) -> None:
        if self.model is not None:
            return
        from agentladder.models.loading import load_model

        start = time.perf_counter()
        model, tokenizer = load_model(self.spec, dtype=self.dtype)
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        model.eval()
        self.model, self.tokenizer = model, tokenizer
        self.load_seconds = time.perf_counter() - start

    def close(self) -> None:
        self._prefix = None
        if self.spec is not None:
            self.model = self.tokenizer = None
            self._brace_counts = None

    def complete(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 stop_at_json: bool = False, progress: ProgressFn | None = None) -> list[str]:
        import torch

        from agentladder.models.chat import prompt_ids

        self.prepare()
        tok, model = self.tokenizer, self.model
        encoded = [prompt_ids(tok, p) for p in prompts]
        shared = shared_prefix_length(encoded) if self.prefix_cache else 0
        if shared < MIN_SHARED_PREFIX:
            shared = 0
        prefix_kv = self._prefix_kv(tuple(encoded[0][:shared])) if shared else None
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = [""] * len(encoded)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        device = next(model.parameters()).device
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            tail = max(len(encoded[i]) for i in idx) - shared
            width = shared + tail
            ids = torch.full((len(idx), width), pad, dtype=torch.long)  # (B, T): [prefix | pad | row]
            attn = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                own = encoded[i][shared:]
                ids[row, :shared] = torch.tensor(encoded[i][:shared], dtype=torch.long)
                attn[row, :shared] = 1
                ids[row, width - len(own) :] = torch.tensor(own, dtype=torch.long)
                attn[row, width - len(own) :] = 1
            kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=tok.eos_token_id)
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature, top_p=1.0)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if stop_at_json:
                from transformers import StoppingCriteriaList

                kwargs["stopping_criteria"] = StoppingCriteriaList([_stop_after_json_class()(*self._braces(), len(idx))])
            if prefix_kv is not None:
                kwargs["past_key_values"] = _batch_cache(prefix_kv, len(idx), width + max_new_tokens)
            with torch.inference_mode():
                gen = model.generate(input_ids=ids.to(device), attention_mask=attn.to(device), **kwargs)
            for row, i in enumerate(idx):
                out[i] = tok.decode(gen[row, width:], skip_special_tokens=True).strip()
            if progress is not None:
                progress(len(idx))
        return out

    def _prefix_kv(self, prefix: tuple[int, ...]):
        """Keys and values of the shared prefix (batch 1), kept while the prefix stays the same."""
        if self._prefix is None or self._prefix[0] != prefix:
            import torch

            device = next(self.model.parameters()).device
            with torch.inference_mode():
                kv = self.model(torch.tensor([prefix], device=device), use_cache=True).past_key_values
            self._prefix = (prefix, kv)
        return self._prefix[1]

    def _braces(self):
        """Per-token counts of ``{`` and ``}`` over the vocabulary, computed once per tokenizer."""
        if self._brace_counts is None:
            import torch

            size = max(len(self.tokenizer), getattr(self.model.config, "vocab_size", 0) or 0)
            pieces = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
            pieces += [""] * (size - len(pieces))
            opens = torch.tensor([(p or "").count("{") for p in pieces])  # (V,)
            closes = torch.tensor([(p or "").count("}") for p in pieces])
            self._brace_counts = (opens, closes)
        return self._brace_counts


def shared_prefix_length(encoded: Sequence[Sequence[int]]) -> int:
    """Tokens every sequence starts with, leaving each at least one token of its own to prefill."""
    if not encoded:
        return 0
    limit = min(len(e) for e in encoded) - 1
    first = encoded[0]
    n = 0
    while n < limit and all(e[n] == first[n] for e in encoded):
        n += 1
    return n


@functools.cache
def _stop_after_json_class():
    from transformers import StoppingCriteria

    class StopAfterJSON(StoppingCriteria):
        """Stop a row once the braces it generated balance again after the first ``{``.

        Counts braces per token (``(V,)`` tables), so a step costs two gathers, not a decode.
        Braces inside JSON strings are counted too; a stray one only ends a row early or late,
        and the parser reads whatever object is there.
        """

        def __init__(self, opens, closes, batch: int):
            import torch

            self.opens, self.closes = opens, closes
            self.depth = torch.zeros(batch, dtype=torch.long)  # (B,)
            self.seen = torch.zeros(batch, dtype=torch.bool)

        def __call__(self, input_ids, scores, **kwargs):
            last = input_ids[:, -1].cpu()  # (B,) the token just generated
            self.depth += self.opens[last] - self.closes[last]
            self.seen |= self.opens[last] > 0
            return (self.seen & (self.depth <= 0)).to(input_ids.device)

    return StopAfterJSON


def _batch_cache(prefix_kv: Any, batch: int, capacity: int) -> Any:
    """A cache holding the shared prefix for ``batch`` rows, with room for ``capacity`` positions per row."""
    from transformers import DynamicCache

    cache = DynamicCache()
    layer = _buffered_layer_class()
    cache.layers = [layer(lay.keys, lay.values, batch, capacity) for lay in prefix_kv.layers]
    return cache


@functools.cache
def _buffered_layer_class():
    from transformers.cache_utils import DynamicLayer

    class BufferedLayer(DynamicLayer):
        """A dynamic cache layer that writes new keys and values into a buffer instead of concatenating.

        ``DynamicLayer`` copies its whole cache at every decoding step (``torch.cat``); with 64 rows
        of a 600-token three-shot prompt that copy is a large part of a step on a CPU. Here the
        buffer is allocated once (and doubled if a row outgrows it); ``keys`` and ``values`` are
        views of its filled part, so everything that reads a ``DynamicLayer`` reads this one.
        """

        def __init__(self, keys: Any, values: Any, batch: int, capacity: int):
            super().__init__()
            self.device = keys.device
            self.is_initialized = True
            self._fill(keys, values, batch, capacity)

        def _fill(self, keys: Any, values: Any, batch: int, capacity: int) -> None:
            _, heads, n, dim = keys.shape  # (1 or B, H, P, D)
            self._k = keys.new_empty((batch, heads, max(capacity, n), dim))
            self._v = values.new_empty((batch, heads, max(capacity, n), values.shape[-1]))
            self._k[:, :, :n] = keys  # broadcast over the batch when the prefix has one row
            self._v[:, :, :n] = values
            self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            # ``keys`` is a leading view of the buffer unless something reordered it (a crop keeps the view).
            if self.keys.data_ptr() != self._k.data_ptr() or self.keys.shape[0] != self._k.shape[0]:
                self._fill(self.keys, self.values, self.keys.shape[0], self._k.shape[-2])
            n, new = self.keys.shape[-2], key_states.shape[-2]
            if n + new > self._k.shape[-2]:
                self._fill(self.keys, self.values, self.keys.shape[0], 2 * (n + new))
            self._k[:, :, n : n + new] = key_states
            self._v[:, :, n : n + new] = value_states
            self.keys, self.values = self._k[:, :, : n + new], self._v[:, :, : n + new]
            return self.keys, self.values

    return BufferedLayer
