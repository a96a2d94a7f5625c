"""When a generated sequence ends: end of turn, a stop string, or a closed JSON object.

One implementation for every generation path (evaluation, agents, distillation,
pair sampling, RL rollouts), checked per row after each sampled token:

- **end of turn**: the tokenizer's end-of-sequence id (kept in the token ids,
  dropped from the text);
- **stop strings**: a row ends with the token that completes one (the string
  is kept); the last 16 tokens are decoded, so a string split across tokens
  is found;
- **the JSON object rule** (``stop_at_json``): a row ends once the braces it
  generated balance again after its first ``{``. Braces are counted per token
  from tables over the vocabulary built once per tokenizer, so a step costs two
  lookups, not a decode. Braces inside JSON strings count too; a stray one only
  ends a row early or late, and the parser reads whatever object is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STOP_WINDOW = 16
"""Tokens decoded from the end of a row to look for stop strings."""


def brace_counts(tokenizer: Any, vocab: int = 0) -> tuple[list[int], list[int]]:
    """``(opens, closes)``: the ``{`` and ``}`` in each token id's piece, for ``max(len(tokenizer), vocab)`` ids."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    pieces += [""] * max(0, vocab - len(pieces))
    return [(p or "").count("{") for p in pieces], [(p or "").count("}") for p in pieces]


class StopRules:
    """The stop rules of one generation call; :meth:`start` then :meth:`done` per row and token."""

    def __init__(self, tokenizer: Any, stop: Sequence[str] = (), stop_at_json: bool = False,
                 braces: tuple[list[int], list[int]] | None = None):
        self.tokenizer = tokenizer
        eos = tokenizer.eos_token_id
        self.eos = {eos} if isinstance(eos, int) else set(eos or [])
        self.stop = [s for s in stop if s]
        self.json = stop_at_json
        if self.json:
            self.opens, self.closes = braces if braces is not None else brace_counts(tokenizer)
        self.depth: list[int] = []
        self.seen: list[bool] = []

    def start(self, rows: int) -> None:
        """Reset the per-row JSON state for ``rows`` new sequences."""
        self.depth = [0] * rows
        self.seen = [False] * rows

    def done(self, row: int, token: int, tokens: list[int]) -> bool:
        """Whether ``row`` ends with ``token`` (already appended to its ``tokens``)."""
        if token in self.eos:
            return True
        if self.json:
            self.depth[row] += self.opens[token] - self.closes[token]
            self.seen[row] |= self.opens[token] > 0
            if self.seen[row] and self.depth[row] <= 0:
                return True
        if self.stop:
            tail = self.tokenizer.decode(tokens[-STOP_WINDOW:], skip_special_tokens=False)
            return any(s in tail for s in self.stop)
        return False
