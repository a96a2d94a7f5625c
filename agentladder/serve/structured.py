"""Structured output that always parses: JSON schemas enforced while decoding, with llguidance.

A ``response_format`` of ``json_schema`` (or ``json_object``), and a ``tool_choice``
that requires a call, become a grammar. Before each sampled token the sequence's
matcher says which tokens the grammar allows next; every other token's logit is
set to ``-inf``, so whatever the model prefers, the answer is a JSON value of the
schema. Once the grammar is complete the sequence ends. Only ``max_tokens`` can cut
an answer short (``finish_reason: "length"``), as with OpenAI.

Why llguidance (https://github.com/guidance-ai/llguidance) over xgrammar and outlines:
it installs as one wheel with no Python dependencies and runs on a CPU (xgrammar 0.2
pulls in triton and apache-tvm-ffi; outlines' JSON path brings its own stack); it
reads transformers' fast tokenizers directly; it computes a token mask in well under
a millisecond on SmolLM2's 49,152-token vocabulary, lazily, with no per-schema
compile step (a new schema per request costs about a millisecond); and it covers
more of JSON Schema than the others. vLLM, SGLang and llama.cpp ship it as one of
their structured-output back ends.

JSON is written as ``json.dumps`` writes it (``", "`` and ``": "``), the layout the
task data and most models' training data use.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import llguidance
import llguidance.hf
import llguidance.torch
import numpy as np
import torch

JSON_OPTIONS = {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False}
"""The layout of generated JSON (llguidance's JSON compile options)."""


def closed(schema: Any) -> Any:
    """``schema`` with every object that lists its ``properties`` closed to others, unless it says otherwise.

    JSON Schema leaves an object open by default, so a grammar built from it lets the model
    add keys of its own, and a weak model can write one key forever. Tools and response
    formats declare what their answers hold (OpenAI's strict mode requires
    ``additionalProperties: false`` for the same reason; xgrammar's strict mode, vLLM's default,
    closes them too), so the server generates only the declared keys. An object with an explicit
    ``additionalProperties``, or with no ``properties`` (``json_object``), is left as it is.
    """
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):  # name -> schema: close each schema, not the map
            out[key] = {name: closed(sub) for name, sub in value.items()}
        elif key in ("enum", "const", "default", "examples", "required"):  # values, not schemas
            out[key] = value
        else:
            out[key] = closed(value)
    if isinstance(schema.get("properties"), dict) and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
"""Keywords whose value maps names to schemas."""


class GrammarError(ValueError):
    """A schema (or other grammar) llguidance cannot compile; the message says why."""


@dataclass(frozen=True)
class Grammar:
    """A compiled-on-demand grammar (llguidance's serialised form) and where it came from."""

    text: str
    source: str
    """``json_schema``, ``json_object`` or ``tool_call``: for messages."""


class Structured:
    """Grammars and matchers over one tokenizer (see the module docstring)."""

    def __init__(self, tokenizer: Any, vocab_size: int):
        self.hf_tokenizer = tokenizer
        self.vocab_size = vocab_size
        """Logits' width (the model's vocabulary, which may exceed the tokenizer's)."""

    @functools.cached_property
    def tokenizer(self) -> llguidance.LLTokenizer:
        """llguidance's view of the tokenizer (built once, about a second for a 50k vocabulary)."""
        eos = self.hf_tokenizer.eos_token_id
        return llguidance.hf.from_tokenizer(self.hf_tokenizer, n_vocab=max(self.vocab_size, len(self.hf_tokenizer)),
                                            eos_token=eos)

    def json_schema(self, schema: dict[str, Any], source: str = "json_schema") -> Grammar:
        """A grammar for JSON values of ``schema``; :class:`GrammarError` when it cannot be compiled."""
        if not isinstance(schema, dict):
            raise GrammarError("a JSON schema is an object")
        try:
            text = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(closed(schema)), defaults=JSON_OPTIONS)
            error = llguidance.LLMatcher.validate_grammar(text, self.tokenizer)
        except Exception as err:  # llguidance's own errors: the schema is not one it can compile
            raise GrammarError(str(err).split("\n")[0]) from None
        if error:
            raise GrammarError(error.split("\n")[0])
        return Grammar(text, source)

    def json_object(self) -> Grammar:
        """Any JSON object (``response_format: {"type": "json_object"}``)."""
        return self.json_schema({"type": "object"}, "json_object")

    def matcher(self, grammar: Grammar) -> Matcher:
        return Matcher(llguidance.LLMatcher(self.tokenizer, grammar.text), self.vocab_size)


class Matcher:
    """One sequence's place in its grammar."""

    def __init__(self, matcher: llguidance.LLMatcher, vocab_size: int):
        self._m = matcher
        self.vocab_size = vocab_size
        self._bits = llguidance.torch.allocate_token_bitmask(1, vocab_size)

    def allowed(self) -> torch.Tensor:
        """``(V,)`` bool: the tokens the grammar allows next."""
        llguidance.torch.fill_next_token_bitmask(self._m, self._bits, 0)
        bits = np.unpackbits(self._bits.numpy().view(np.uint8), bitorder="little")[: self.vocab_size]
        return torch.from_numpy(bits.astype(bool))

    def consume(self, token: int) -> bool:
        """Advance by ``token``; False if the grammar did not allow it (the matcher is then in error)."""
        return bool(self._m.consume_token(token))

    @property
    def done(self) -> bool:
        """The grammar is complete: nothing but the end of the sequence may follow."""
        return bool(self._m.is_stopped())

    @property
    def error(self) -> str:
        return self._m.get_error() if self._m.is_error() else ""


def constrain(logits: torch.Tensor, allowed: torch.Tensor) -> None:
    """Set the logits of the tokens not ``allowed`` to ``-inf``, in place (``(V,)`` each)."""
    n = min(logits.shape[-1], allowed.shape[-1])
    logits[..., :n].masked_fill_(~allowed[:n].to(logits.device), float("-inf"))
    if logits.shape[-1] > n:
        logits[..., n:] = float("-inf")


__all__ = ["JSON_OPTIONS", "Grammar", "GrammarError", "Matcher", "Structured", "constrain"]
