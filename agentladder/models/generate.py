"""``generate``: complete a batch of chat prompts with a local model, through the inference engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from agentladder.data.schema import Message
from agentladder.models.engine import Engine, answer_sampling


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Message]],
    *,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Complete each prompt (a list of messages) with the chat template; return the new text, stripped.

    A convenience over :class:`~agentladder.models.engine.Engine`: prompts sorted by length in
    batches of ``batch_size``, a shared prefix computed once; ``temperature=0`` is greedy decoding,
    else top-k 50 and ``top_p`` sampling seeded by ``seed``. ``progress`` is called with the number
    of prompts finished after each batch.
    """
    if seed is not None:
        torch.manual_seed(seed)
    params = answer_sampling(max_new_tokens, temperature, top_p=top_p)
    engine = Engine(model, tokenizer, batch_size=batch_size, keep_prefix=False)
    done = engine.generate(prompts, params, progress=progress)
    return [group[0].text.strip() for group in done]
