"""Loading models, chat templates and masks, LoRA adapters, and inference.

Inference has one engine (:mod:`agentladder.models.engine`: batching, a shared-prefix
cache written in place, stop rules, streaming, adapters per row) and one provider
protocol in front of it (:mod:`agentladder.models.providers`: local, OpenAI-compatible,
scripted); :func:`generate` is a convenience over the engine.
"""

from agentladder.models.chat import (
    TokenizedRow,
    prompt_ids,
    render,
    tokenize_conversation,
    tokenize_text,
)
from agentladder.models.generate import generate
from agentladder.models.loading import (
    ALIASES,
    DEFAULT_MODEL,
    ModelLoadError,
    load_model,
    load_tokenizer,
    resolve,
)
from agentladder.models.lora import (
    LoraSettings,
    attach_lora,
    load_adapter,
    merge,
    reference_mode,
    save_adapter,
)
from agentladder.models.tiny import tiny_model, tiny_tokenizer

__all__ = [
    "ALIASES",
    "DEFAULT_MODEL",
    "LoraSettings",
    "ModelLoadError",
    "TokenizedRow",
    "attach_lora",
    "generate",
    "load_adapter",
    "load_model",
    "load_tokenizer",
    "merge",
    "prompt_ids",
    "reference_mode",
    "render",
    "resolve",
    "save_adapter",
    "tiny_model",
    "tiny_tokenizer",
    "tokenize_conversation",
    "tokenize_text",
]
