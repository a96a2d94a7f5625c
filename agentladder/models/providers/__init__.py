"""Model providers: one protocol (:class:`Provider`), three implementations, and the factory.

:func:`make_provider` turns a spec into a provider:

- ``smollm2-135m``, ``tiny``, ``runs/sft1`` (a full or LoRA run folder), a hub id:
  :class:`LocalProvider`, the inference engine through the model's chat template;
- ``openai:MODEL`` or ``openai:MODEL@http://host:port/v1``: :class:`OpenAIProvider`,
  any server that speaks ``/chat/completions`` (vLLM, llama.cpp server, Ollama, a
  cloud API); the key comes from ``OPENAI_API_KEY``, the default address from
  ``OPENAI_BASE_URL``;
- a classifier folder (``classifier.json``, from ``agentladder train classifier``):
  :class:`ClassifierProvider`, which answers with the label of the last user turn;
- a reward model folder (``reward_model.json``, from ``agentladder train reward``):
  :class:`RewardModelProvider`, which answers with the reward of the conversation's last answer
  (:meth:`RewardModelProvider.score` for numbers; texts re-tokenised with its own tokenizer);
- a provider is returned as it is. :class:`ScriptedProvider` gives recorded answers, for tests.

:func:`chat_provider` is the agents runtime's form: local models come from the
process's shared :class:`~agentladder.models.pool.ModelPool`, so specialists
tuned from one base share it.
"""

from __future__ import annotations

from typing import Any

from agentladder.models.classifier import is_classifier_folder
from agentladder.models.pool import ModelPool, default_pool
from agentladder.models.providers.base import (
    ChatResponse,
    ProgressFn,
    Prompt,
    Provider,
    ProviderError,
    TextFn,
    Usage,
)
from agentladder.models.providers.classifier import ClassifierProvider
from agentladder.models.providers.local import LocalChat, LocalProvider
from agentladder.models.providers.openai_compatible import (
    OpenAIProvider,
    openai_compatible,
    parse_openai_spec,
)
from agentladder.models.providers.reward import RewardModelProvider
from agentladder.models.providers.scripted import ScriptedCall, ScriptedProvider
from agentladder.models.providers.toolcalls import ToolSpec
from agentladder.models.rewardmodel import is_reward_model_folder


def make_provider(spec: str | Provider, *, batch_size: int = 8, dtype: str = "float32",
                  pool: ModelPool | None = None, name: str | None = None) -> Provider:
    """A provider from a spec (see the module docstring), or the provider itself.

    ``batch_size``, ``dtype`` (``float32`` or ``bfloat16``) and ``pool`` apply to local models; without
    a pool a local model gets its own, freed by ``close()``. ``name`` defaults to the spec.
    """
    if isinstance(spec, Provider):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a model is a provider or a spec string, not {type(spec).__name__}")
    if spec.startswith("openai:"):
        model, url = parse_openai_spec(spec)
        return OpenAIProvider(model, base_url=url, name=name or spec)
    if is_classifier_folder(spec):
        return ClassifierProvider(spec, batch_size=batch_size, name=name)
    if is_reward_model_folder(spec):
        return RewardModelProvider(spec, batch_size=batch_size, name=name)
    return LocalProvider(spec, batch_size=batch_size, dtype=dtype, pool=pool, name=name)


def chat_provider(spec: str | Provider | Any) -> Provider:
    """A provider for an agent: as :func:`make_provider`, with local models from the shared pool,
    and an endpoint named by its model (``gen_ai.request.model`` in traces)."""
    if isinstance(spec, str) and spec.startswith("openai:"):
        return make_provider(spec, name=parse_openai_spec(spec)[0])
    if isinstance(spec, str) and is_classifier_folder(spec):
        return ClassifierProvider(spec)
    if isinstance(spec, str) and is_reward_model_folder(spec):
        return RewardModelProvider(spec)
    if isinstance(spec, str):
        return LocalChat(spec)
    return make_provider(spec)


__all__ = [
    "ChatResponse",
    "ClassifierProvider",
    "LocalChat",
    "LocalProvider",
    "ModelPool",
    "OpenAIProvider",
    "ProgressFn",
    "Prompt",
    "Provider",
    "ProviderError",
    "RewardModelProvider",
    "ScriptedCall",
    "ScriptedProvider",
    "TextFn",
    "ToolSpec",
    "Usage",
    "chat_provider",
    "default_pool",
    "make_provider",
    "openai_compatible",
]
