"""The provider protocol: how every part of agentladder asks a model for an answer.

A :class:`Provider` answers a conversation (messages, and the tools the model
may call) with one assistant message: content, tool calls, or both, with the
tokens it used, why it ended and the seconds it took (:class:`ChatResponse`).
Evaluation and pair sampling use the batch form, :meth:`Provider.complete`:
many prompts in, one text per prompt out. The agents runtime uses
:meth:`Provider.achat` in its event loop.

Three implementations share it: a local model through the inference engine
(:mod:`~agentladder.models.providers.local`), any OpenAI-compatible endpoint
(:mod:`~agentladder.models.providers.openai_compatible`), and a script for
tests (:mod:`~agentladder.models.providers.scripted`).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agentladder.data.schema import Message
from agentladder.errors import AgentladderError
from agentladder.models.providers.toolcalls import ToolSpec

Prompt = Sequence[Message]
ProgressFn = Callable[[int], None]
"""Called with the number of prompts just finished."""
TextFn = Callable[[str], None]
"""Called with each new piece of an answer's text as it is generated (streaming)."""


class ProviderError(AgentladderError, RuntimeError):
    """A provider that cannot answer (endpoint down, bad response), said in one line."""


@dataclass
class Usage:
    """Tokens a call used."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass
class ChatResponse:
    """One model answer."""

    message: Message
    """The assistant turn: content, tool calls, or both."""
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    """The model that answered, as the provider names it."""
    finish_reason: str = "stop"
    """``stop``, ``length`` (cut at the token budget) or ``tool_calls``."""
    seconds: float = 0.0
    """Time the provider spent (the caller's overhead is measured outside it)."""


class Provider(ABC):
    """Answers conversations: one assistant message per call, or one text per prompt in a batch."""

    name: str = "provider"
    """The model's name in reports and traces (``gen_ai.request.model``)."""
    provider_name: str = "agentladder"
    """``gen_ai.provider.name`` in traces (``openai``, ``agentladder.local``, ``scripted``)."""
    batch_size: int = 8
    """How many prompts a caller hands to :meth:`complete` at a time."""

    @abstractmethod
    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False, on_text: TextFn | None = None) -> ChatResponse:
        """Answer ``messages``. ``tools`` are the calls the model may make; ``json_output`` says the
        answer should be one JSON object (a provider may stop generation after it); ``on_text``
        receives the answer's text piece by piece as it is generated."""

    async def achat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
                    temperature: float = 0.0, json_output: bool = False,
                    on_text: TextFn | None = None) -> ChatResponse:
        """The async form; by default :meth:`chat` in a worker thread."""
        return await asyncio.to_thread(self.chat, messages, tools=tools, max_new_tokens=max_new_tokens,
                                       temperature=temperature, json_output=json_output, on_text=on_text)

    def complete(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 stop_at_json: bool = False, progress: ProgressFn | None = None) -> list[str]:
        """One answer's text per prompt, in order; ``stop_at_json`` lets generation end after one JSON object.

        ``progress`` is called with the number of prompts finished, as they finish. By default
        the prompts are answered one :meth:`chat` at a time; providers that batch override this.
        """
        out = []
        for prompt in prompts:
            reply = self.chat(prompt, max_new_tokens=max_new_tokens, temperature=temperature, json_output=stop_at_json)
            out.append(reply.message.content or "")
            if progress is not None:
                progress(1)
        return out

    def prepare(self) -> None:
        """Get ready to answer (load a local model), so timings of calls leave loading out."""
        return None

    def close(self) -> None:
        """Free what the provider holds (a local model's memory); nothing by default."""
        return None
