"""Choosing each row's next token in a mixed batch: every request brings its own settings.

One decoding step of the running batch gives ``(B, V)`` logits; each row belongs to
a request with its own temperature, top-p, top-k, seed, logit bias, grammar and
log-probability wishes. In order, per row:

1. the **log-probabilities** a client asked for are taken from the model's raw
   distribution, ``log_softmax(logits)``, before anything below changes it (vLLM's
   default, ``raw_logprobs``);
2. the **logit bias** is added;
3. the **grammar** masks every token it does not allow (``-inf``); once it is complete
   only the end-of-sequence token is left;
4. greedy rows (temperature 0) take the arg-max, all at once, as
   :meth:`Engine.generate <agentladder.models.engine.Engine.generate>` does, so a
   greedy answer is token for token the engine's; the others sample with the engine's
   :func:`~agentladder.models.engine.sample_tokens`, each from its own seeded generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from agentladder.models.engine import sample_tokens
from agentladder.serve.structured import Matcher, constrain


@dataclass
class Sampling:
    """One request's decoding settings (the scheduler's view of a request body)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    logprobs: int | None = None
    """None: none; k: the chosen token's log-probability and the k most likely alternatives."""
    logit_bias: dict[int, float] = field(default_factory=dict)


@dataclass
class RowChoice:
    """What one row chose at one step."""

    token: int
    logprob: float | None = None
    top: list[tuple[int, float]] | None = None


def generator_for(sampling: Sampling, index: int) -> torch.Generator | None:
    """A generator for choice ``index`` of a seeded request (each choice its own stream), else None."""
    if sampling.seed is None:
        return None
    return torch.Generator().manual_seed((sampling.seed * 1_000_003 + index) % (2**63))


def choose(logits: torch.Tensor, settings: Sequence[Sampling], matchers: Sequence[Matcher | None],
           generators: Sequence[torch.Generator | None], eos: int | None) -> list[RowChoice]:
    """Each row's next token from ``(B, V)`` logits (see the module docstring); ``logits`` is changed in place."""
    logits = logits.float()
    raw = torch.log_softmax(logits, -1) if any(s.logprobs is not None for s in settings) else None
    for b, (s, m) in enumerate(zip(settings, matchers, strict=True)):
        if s.logit_bias:
            ids = torch.tensor([t for t in s.logit_bias if 0 <= t < logits.shape[-1]], dtype=torch.long)
            vals = torch.tensor([s.logit_bias[int(t)] for t in ids.tolist()], dtype=logits.dtype)
            if len(ids):
                logits[b, ids] += vals
        if m is not None:
            allowed = m.allowed()
            if m.done or not bool(allowed.any()):
                allowed = torch.zeros(logits.shape[-1], dtype=torch.bool)
                if eos is not None:
                    allowed[eos] = True
            constrain(logits[b], allowed)
    tokens = [0] * len(settings)
    greedy = [b for b, s in enumerate(settings) if s.temperature <= 0]
    if greedy:
        for b, t in zip(greedy, logits[greedy].argmax(-1).tolist(), strict=True):
            tokens[b] = t
    for b, s in enumerate(settings):
        if s.temperature > 0:
            tok, _ = sample_tokens(logits[b : b + 1], s.temperature, s.top_p, generators[b], max(0, s.top_k))
            tokens[b] = int(tok[0])
    out = []
    for b, (s, t) in enumerate(zip(settings, tokens, strict=True)):
        choice = RowChoice(t)
        if raw is not None and s.logprobs is not None:
            choice.logprob = float(raw[b, t])
            if s.logprobs > 0:
                values, ids = raw[b].topk(s.logprobs)
                choice.top = list(zip(ids.tolist(), values.tolist(), strict=True))
        out.append(choice)
    return out


__all__ = ["RowChoice", "Sampling", "choose", "generator_for"]
