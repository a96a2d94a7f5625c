"""Reward shaping as pure functions: DAPO's overlong punishment, and span values on tokens.

Shaping that needs the training side (the KL to the reference in the reward) lives in
:mod:`agentladder.train.rl_shaping`.
"""

from __future__ import annotations

import torch

from agentladder.errors import ConfigError


def overlong_penalty(lengths: torch.Tensor, max_length: int, buffer: int, factor: float = 1.0) -> torch.Tensor:
    """DAPO's soft overlong punishment, ``(B,)`` lengths -> ``(B,)`` penalties (<= 0).

    ``0`` when ``|y| <= L_max - L_cache``; ``((L_max - L_cache) - |y|) / L_cache`` inside the buffer
    (falling linearly to -1); ``-1`` beyond ``L_max``; all times ``factor``.
    Yu et al., *DAPO*, 2025, arXiv:2503.14476, eq. 13 (``L_max`` = ``max_length``, ``L_cache`` = ``buffer``).
    """
    if buffer <= 0 or buffer > max_length:
        raise ConfigError(f"the overlong buffer must be in 1..{max_length}, got {buffer}")
    expected = max_length - buffer
    x = lengths.to(torch.float32)
    inside = (expected - x) / buffer
    out = torch.where(x <= expected, torch.zeros_like(x), torch.where(x <= max_length, inside, -torch.ones_like(x)))
    return out * factor


def overlong_buffer(max_length: int, ratio: float) -> int:
    """``L_cache`` for DAPO's punishment: the last ``ratio`` of the budget ``L_max``, rounded, at least 1 token.

    E.g. ``overlong_buffer(64, 0.25) == 16``: responses up to 48 tokens are not punished.
    """
    return max(1, int(round(ratio * max_length)))


def span_token_values(token_ends: list[int], token_starts: list[int], spans) -> list[float]:
    """The value each token gets from character spans: the sum of the spans its characters overlap.

    ``token_starts[k]``, ``token_ends[k]``: token ``k``'s character range in the response text.
    """
    out = [0.0] * len(token_ends)
    for span in spans:
        for k, (s, e) in enumerate(zip(token_starts, token_ends, strict=True)):
            if e > span.start and s < span.end and e > s:
                out[k] += span.value
    return out


def token_char_ranges(tokenizer, token_ids: list[int]) -> tuple[list[int], list[int]]:
    """``(starts, ends)``: each token's character range in ``tokenizer.decode(token_ids)``.

    Decodes growing prefixes, so multi-byte characters split over tokens land on the token that completes them.
    """
    starts, ends, prev = [], [], 0
    for k in range(len(token_ids)):
        n = len(tokenizer.decode(token_ids[: k + 1], skip_special_tokens=True))
        starts.append(min(prev, n))
        ends.append(n)
        prev = max(prev, n)
    return starts, ends
