"""The inference engine: one decode loop for every local generation in agentladder.

Evaluation, the agents' local models, distillation, pair sampling and RL
rollouts all call :meth:`Engine.generate`: a batch of prompts (message lists,
rendered with the chat template, or token ids) and :class:`SamplingParams` in;
for each prompt ``n`` :class:`Completion` s out, each with its text, token ids,
every token's log-probability and why it ended. What makes it cheap:

- **Sorted batches.** Prompts are sorted by length into batches of at most
  ``batch_size`` sequences (whole groups of ``n``), so little padding is wasted.
- **Shared prefix, computed once.** When every prompt starts with the same
  tokens (an evaluation's instruction and few-shot examples: about 560 of 600
  tokens at 3 shots), their keys and values are computed once at batch 1 and
  broadcast into each batch; a batch prefills only the rows' own tokens. The
  row layout is ``[prefix | padding | own tokens]``: the attention mask hides
  the padding and the position ids (the mask's running count) are those of the
  unpadded prompt, so the tokens are the same as without the prefix (tested).
  A provider's engine keeps the prefix between calls while it stays the same;
  a training model's does not (its weights change).
- **One prefill per group.** With ``n > 1`` each prompt is prefilled once and
  its cache repeated ``n`` times along the batch.
- **A cache written in place** (:mod:`agentladder.models.kvcache`): no
  ``torch.cat`` of the whole cache per step.
- **Finished rows leave the batch** and the cache (end of turn, a stop
  string, a closed JSON object: :mod:`agentladder.models.stops`), so short
  answers stop costing compute. They leave in rounds, once a quarter of the
  batch has finished, and the cache compacts in place: a round costs one copy
  of the cache, so a batch of 64 pays a handful of copies, not 64.
- **Adapters per row.** On a peft model ``adapters`` names each prompt's LoRA
  adapter (``None`` for the base with adapters disabled); one name for the whole
  batch switches the model to it, several run in one batch through peft's
  mixed-batch ``adapter_names``.

Each token's log-probability is under the sampling distribution
``log_softmax(logits / T)`` over the whole vocabulary, even with top-k or top-p
(as TRL and verl compute it for the loss; greedy uses ``T = 1``): for RL these
are the old-policy log-probabilities, at no extra forward pass. ``on_token``
sees every sampled token as it is chosen, for streaming.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from agentladder.data.schema import Message
from agentladder.errors import ConfigError
from agentladder.models.chat import prompt_ids
from agentladder.models.kvcache import PrefixKV, in_place_cache, layer_states
from agentladder.models.stops import StopRules, brace_counts

MIN_SHARED_PREFIX = 16
"""Shorter shared prefixes are not worth a cache copy per batch."""
COMPACT_SHARE = 4
"""Finished rows leave a batch once they are at least 1 / COMPACT_SHARE of it (see ``_decode``)."""
BASE_ADAPTER = "__base__"
"""peft's name for "no adapter" in a mixed batch."""

Prompt = Sequence[int] | Sequence[Message]
TokenCallback = Callable[[int, int], None]
"""``on_token(sequence, token_id)``; ``sequence`` is ``prompt_index * n + sample``."""


@dataclass
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 1.0
    """0 is greedy decoding."""
    top_p: float = 1.0
    stop: Sequence[str] = ()
    """Stop strings: a response ends with the token that completes one (the string is kept)."""
    stop_at_json: bool = False
    """End a response once the braces it opened after its first ``{`` balance again."""
    top_k: int = 0
    """Sample among the ``top_k`` most likely tokens only; 0 keeps them all."""


@dataclass
class Completion:
    """One generated sequence."""

    token_ids: list[int]
    logprobs: list[float]
    """Sampling log-probability of each token (same length as ``token_ids``)."""
    text: str
    """The tokens decoded without special tokens (not stripped)."""
    finish_reason: Literal["stop", "length"]
    """``stop``: ended by end of turn, a stop string or a closed JSON object; ``length``: cut at the budget."""
    mask: list[int] = field(default_factory=list)
    """1 on tokens the policy produced (all of them, for a single turn; 0 on tool outputs between turns)."""
    turns: list = field(default_factory=list)
    """Multi-turn rollouts: the response's messages (assistant, tool, ..., assistant); empty for a single turn."""

    def __post_init__(self) -> None:
        if not self.mask:
            self.mask = [1] * len(self.token_ids)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


ANSWER_TOP_K = 50
"""Top-k of sampled answers (:func:`answer_sampling`): transformers' ``generate`` default, which every
sampled answer used before the engine, kept so sampling draws from the same distribution."""


def answer_sampling(max_new_tokens: int, temperature: float, *, top_p: float = 1.0,
                    stop_at_json: bool = False) -> SamplingParams:
    """Settings for answering prompts (evaluation, agents, distillation, pairs): greedy at temperature 0,
    else top-k :data:`ANSWER_TOP_K` sampling. RL rollouts sample the full distribution instead."""
    return SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                          top_k=ANSWER_TOP_K if temperature > 0 else 0, stop_at_json=stop_at_json)


def sample_tokens(logits: torch.Tensor, temperature: float, top_p: float = 1.0,
                  generator: torch.Generator | None = None, top_k: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row from ``(B, V)`` logits; return ``(tokens (B,), logprobs (B,))``.

    Temperature, then top-k, then top-p (transformers' order). The log-probability is under
    ``softmax(logits / T)`` over the whole vocabulary (greedy: ``T = 1``).
    """
    logits = logits.float()
    if temperature <= 0:
        tokens = logits.argmax(-1)
        return tokens, torch.log_softmax(logits, -1).gather(-1, tokens[:, None]).squeeze(-1)
    logp = torch.log_softmax(logits / temperature, -1)  # (B, V)
    probs = logp.exp()
    if 0 < top_k < probs.shape[-1]:
        kth = probs.topk(top_k, -1).values[:, -1:]  # (B, 1)
        probs = probs * (probs >= kth)
        probs = probs / probs.sum(-1, keepdim=True)
    if top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < top_p  # always keeps the most likely token
        choice = torch.multinomial(sorted_p * keep, 1, generator=generator)
        tokens = order.gather(-1, choice).squeeze(-1)
    else:
        tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)


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
def _cache_argument(forward: Any) -> str:
    """The keyword a model's forward takes its cache by: ``cache`` (transformers 5) or ``past_key_values``."""
    params = inspect.signature(forward).parameters
    return "past_key_values" if "past_key_values" in params and "cache" not in params else "cache"


class Engine:
    """Batched generation from one model (see the module docstring).

    ``batch_size`` is the most sequences decoded at once. ``prefix_cache`` turns the
    shared-prefix cache off; ``keep_prefix`` keeps the prefix's keys and values between
    calls (a frozen model's engine) instead of computing them once per call (a model in training).
    """

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 64, prefix_cache: bool = True,
                 keep_prefix: bool = True):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size = batch_size
        self.prefix_cache = prefix_cache
        self.keep_prefix = keep_prefix
        self._prefix: tuple[Any, PrefixKV] | None = None
        self._braces: tuple[list[int], list[int]] | None = None

    @property
    def prefix_tokens(self) -> int:
        """Length of the prefix whose keys and values are kept (0 when none)."""
        return len(self._prefix[0][0]) if self._prefix is not None else 0

    def clear(self) -> None:
        """Drop the kept prefix."""
        self._prefix = None

    def stop_rules(self, params: SamplingParams) -> StopRules:
        if params.stop_at_json and self._braces is None:
            self._braces = brace_counts(self.tokenizer, getattr(self.model.config, "vocab_size", 0) or 0)
        return StopRules(self.tokenizer, params.stop, params.stop_at_json, self._braces)

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt: ids as they are, messages through the chat template with a generation prompt."""
        if prompt and isinstance(prompt[0], Message):
            return prompt_ids(self.tokenizer, prompt)  # type: ignore[arg-type]
        return [int(t) for t in prompt]  # type: ignore[arg-type]

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams | None = None, *,
                 n: int | Sequence[int] = 1, adapters: Sequence[str | None] | None = None,
                 generator: torch.Generator | None = None, on_token: TokenCallback | None = None,
                 progress: Callable[[int], None] | None = None,
                 batch_size: int | None = None) -> list[list[Completion]]:
        """``n`` completions for each prompt, in prompt order (``n`` a number, or one number per prompt).

        Each prompt is prefilled once and its keys and values repeated for its ``n`` sequences.
        ``adapters`` (peft models) names each prompt's adapter, ``None`` for the base with adapters
        disabled; leave it out to run the model as it is. ``generator`` seeds sampling (else torch's
        global generator). ``progress`` is called with the number of prompts finished after each batch.
        ``batch_size`` (sequences decoded at once; a prompt's ``n`` are never split) overrides the
        engine's for this call. ``on_token`` gets ``(sequence, token)``, the sequences numbered in prompt
        order. The model runs in eval mode and goes back to its mode after.
        """
        params = params or SamplingParams()
        encoded = [self.encode(p) for p in prompts]
        if any(not e for e in encoded):
            raise ConfigError("an empty prompt cannot be continued")
        counts = [n] * len(encoded) if isinstance(n, int) else [int(k) for k in n]
        if len(counts) != len(encoded) or any(k < 1 for k in counts):
            raise ConfigError(f"n: one count of at least 1 for each of the {len(encoded)} prompts, got {n!r}")
        if adapters is not None and len(adapters) != len(encoded):
            raise ConfigError(f"{len(adapters)} adapter names for {len(encoded)} prompts")
        switch, per_row = self._adapter_scope(adapters)
        uniform = adapters[0] if adapters and per_row is None else None
        shared = shared_prefix_length(encoded) if self.prefix_cache and per_row is None else 0
        shared = shared if shared >= MIN_SHARED_PREFIX else 0
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        first = [0] * len(encoded)  # each prompt's first sequence, in prompt order
        for i in range(1, len(encoded)):
            first[i] = first[i - 1] + counts[i - 1]
        out: list[list[Completion]] = [[] for _ in encoded]
        stops = self.stop_rules(params)
        was_training = self.model.training
        self.model.eval()
        try:
            with switch, torch.no_grad():  # not inference_mode: FSDP reuses its buffers in training
                prefix = self._prefix_kv(tuple(encoded[0][:shared]), uniform) if shared else None
                for idx in _batches(order, counts, batch_size or self.batch_size):
                    names = [per_row[i] for i in idx] if per_row is not None else None
                    callback = None if on_token is None else _remap(on_token, idx, counts, first)
                    done = self._batch([encoded[i] for i in idx], shared, prefix, [counts[i] for i in idx], params,
                                       stops, names, generator, callback)
                    at = 0
                    for i in idx:
                        out[i] = done[at : at + counts[i]]
                        at += counts[i]
                    if progress is not None:
                        progress(len(idx))
        finally:
            self.model.train(was_training)
            if not self.keep_prefix:
                self._prefix = None
        return out

    # -- adapters and the shared prefix ------------------------------------------------------------
    def _adapter_scope(self, adapters: Sequence[str | None] | None) -> tuple[Any, list[str] | None]:
        """``(context to run in, per-row adapter names or None)`` for the batch's adapters."""
        if adapters is None:
            return contextlib.nullcontext(), None
        names = {BASE_ADAPTER if a is None else a for a in adapters}
        if not hasattr(self.model, "peft_config"):
            if names - {BASE_ADAPTER}:
                raise ConfigError(f"adapters {sorted(names - {BASE_ADAPTER})} need a model with LoRA adapters")
            return contextlib.nullcontext(), None
        if len(names) != 1:  # none, or several specialists in one batch: peft routes each row to its adapter
            return contextlib.nullcontext(), [BASE_ADAPTER if a is None else a for a in adapters]
        (name,) = names
        if name == BASE_ADAPTER:
            return self.model.disable_adapter(), None
        self.model.set_adapter(name)
        return contextlib.nullcontext(), None

    def _prefix_kv(self, prefix: tuple[int, ...], adapter: str | None) -> PrefixKV:
        """Keys and values of the shared prefix (batch 1), kept while the prefix and adapter stay the same."""
        key = (prefix, adapter)
        if self._prefix is None or self._prefix[0] != key:
            device = next(self.model.parameters()).device
            cache = in_place_cache(self.model.config, 1, len(prefix))
            self._forward(torch.tensor([prefix], device=device), None, None, cache, None, keep=1)
            self._prefix = (key, layer_states(cache))
        return self._prefix[1]

    def _forward(self, ids: torch.Tensor, attn: torch.Tensor | None, pos: torch.Tensor | None, cache: Any,
                 names: list[str] | None, keep: int | None = None) -> torch.Tensor:
        """One forward pass writing into ``cache``; the last position's logits ``(B, V)``."""
        kwargs: dict[str, Any] = {_cache_argument(type(self._inner()).forward): cache}
        if keep is not None:
            kwargs["logits_to_keep"] = keep
        if names is not None:
            kwargs["adapter_names"] = names
        out = self.model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True, **kwargs)
        return out.logits[:, -1]

    def _inner(self) -> Any:
        """The transformers model under a peft wrapper (whose forward passes keywords through)."""
        get = getattr(self.model, "get_base_model", None)
        return get() if callable(get) else self.model

    # -- one batch -----------------------------------------------------------------------------------
    def _batch(self, prompts: list[list[int]], shared: int, prefix: PrefixKV | None, counts: list[int],
               params: SamplingParams, stops: StopRules, names: list[str] | None,
               generator: torch.Generator | None, on_token: TokenCallback | None) -> list[Completion]:
        """Prefill ``prompts`` (once each), then decode their ``counts[i]`` sequences each until all end."""
        tok, device = self.tokenizer, next(self.model.parameters()).device
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(p) for p in prompts)
        total = width + params.max_new_tokens
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)  # (P, W): [prefix | pad | own]
        attn = torch.zeros((len(prompts), total), dtype=torch.long)  # (P, W + new), filled as tokens come
        for r, p in enumerate(prompts):
            own = p[shared:]
            ids[r, :shared] = torch.tensor(p[:shared], dtype=torch.long)
            attn[r, :shared] = 1
            ids[r, width - len(own) :] = torch.tensor(own, dtype=torch.long)
            attn[r, width - len(own) : width] = 1
        pos = (attn[:, :width].cumsum(-1) - 1).clamp(min=0)  # (P, W) positions of the unpadded prompt
        ids, attn, pos = ids.to(device), attn.to(device), pos.to(device)
        cache = in_place_cache(self.model.config, len(prompts), total, prefix)
        logits = self._forward(ids[:, shared:], attn[:, :width], pos[:, shared:], cache, names, keep=1)  # (P, V)
        if max(counts) > 1:  # one copy of each prompt's keys and values per sequence: (P, ...) -> (sum counts, ...)
            repeats: int | torch.Tensor = counts[0] if len(set(counts)) == 1 else torch.tensor(counts, device=device)
            cache.batch_repeat_interleave(repeats)
            logits, attn = logits.repeat_interleave(repeats, 0), attn.repeat_interleave(repeats, 0)
            names = [a for a, k in zip(names, counts, strict=True) for _ in range(k)] if names is not None else None
        return self._decode(cache, logits, attn, width, sum(counts), params, stops, names, generator, on_token)

    def _decode(self, cache: Any, logits: torch.Tensor, attn: torch.Tensor, width: int, rows: int,
                params: SamplingParams, stops: StopRules, names: list[str] | None,
                generator: torch.Generator | None, on_token: TokenCallback | None) -> list[Completion]:
        """Sample, check the stop rules, drop finished rows, run the next step; until every row ends."""
        next_pos = attn[:, :width].sum(-1)  # (B,) position of the next token
        stops.start(rows)
        tokens: list[list[int]] = [[] for _ in range(rows)]
        logps: list[list[float]] = [[] for _ in range(rows)]
        finish = ["length"] * rows
        active = list(range(rows))  # the sequence in each batch row
        for step in range(params.max_new_tokens):
            new, lp = sample_tokens(logits, params.temperature, params.top_p, generator, params.top_k)
            new_l, lp_l = new.tolist(), lp.tolist()
            keep = []
            for b, row in enumerate(active):
                if finish[row] == "stop":  # finished, waiting in the batch for the next compaction
                    continue
                tokens[row].append(new_l[b])
                logps[row].append(lp_l[b])
                if on_token is not None:
                    on_token(row, new_l[b])
                if stops.done(row, new_l[b], tokens[row]):
                    finish[row] = "stop"
                else:
                    keep.append(b)
            if not keep or step == params.max_new_tokens - 1:
                break
            if len(active) - len(keep) >= max(1, len(active) // COMPACT_SHARE):
                # Finished rows leave the batch and the cache once they are a quarter of it: each
                # compaction copies the cache, so rows leave in a few rounds, not one copy per row.
                idx = torch.tensor(keep, device=attn.device)
                cache.batch_select_indices(idx)
                attn, next_pos, new = attn[idx], next_pos[idx], new[idx]
                names = [names[b] for b in keep] if names is not None else None
                active = [active[b] for b in keep]
            attn[:, width + step] = 1
            logits = self._forward(new[:, None], attn[:, : width + step + 1], next_pos[:, None], cache, names)
            next_pos = next_pos + 1
        return [Completion(tokens[r], logps[r], self.tokenizer.decode(tokens[r], skip_special_tokens=True),
                           finish[r])  # type: ignore[arg-type]
                for r in range(rows)]


def _batches(order: list[int], counts: list[int], size: int) -> list[list[int]]:
    """``order``'s prompts cut into batches of at most ``size`` sequences (at least one prompt a batch)."""
    out: list[list[int]] = []
    rows = 0
    for i in order:
        if out and rows + counts[i] <= size:
            out[-1].append(i)
            rows += counts[i]
        else:
            out.append([i])
            rows = counts[i]
    return out


def _remap(on_token: TokenCallback, idx: list[int], counts: list[int], first: list[int]) -> TokenCallback:
    """A batch's callback: its rows are prompt ``idx[0]``'s sequences, then ``idx[1]``'s, ...; each is
    reported as its number over every prompt (``first[i]`` is prompt ``i``'s first)."""
    where = [first[i] + j for i in idx for j in range(counts[i])]
    return lambda row, token: on_token(where[row], token)


__all__ = ["ANSWER_TOP_K", "BASE_ADAPTER", "MIN_SHARED_PREFIX", "Completion", "Engine", "SamplingParams",
           "answer_sampling", "sample_tokens", "shared_prefix_length"]
