"""The policy as a provider: an agent's model calls sampled from the model being trained, ids and log-probs kept.

:class:`PolicyProvider` answers the agents runtime's :meth:`~Provider.chat` calls
from a rollout backend over the trainer's live model
(:class:`~agentladder.models.rollout.LocalRollout`: the inference engine, or vLLM).
For every call it keeps a :class:`ModelCall`: the exact token ids the
conversation was fed to the model as (the chat template, tools included, as
:class:`~agentladder.models.providers.local.LocalProvider` renders them), the
token ids it sampled and each one's log-probability under ``softmax(logits / T)``.
The trainer builds its samples from these ids, so nothing is re-tokenised from
text afterwards.

Calls are kept by the :class:`EpisodeRecorder` of the episode running
(:func:`recording`, a context variable, so it follows the runtime's async tasks
and worker threads). The recorder also holds the episode's sampling generator
(its seed makes the episode reproducible) and its budgets: a call past
``max_calls`` model calls, ``max_tokens`` sampled tokens or the deadline raises
:class:`EpisodeBudgetExceeded`, which the agent sees as any provider failure.

Sampling follows the trainer (its temperature and top-p over the whole
distribution), whatever temperature the agent asks for: the log-probabilities
must be those of the distribution the loss reads. ``max_new_tokens`` is the
agent's, cut to what is left of the episode's token budget.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from opentelemetry import trace

from agentladder.data.schema import Message
from agentladder.models.engine import SamplingParams
from agentladder.models.providers.base import ChatResponse, Provider, ProviderError, TextFn, Usage
from agentladder.models.providers.local import chat_prompt_ids
from agentladder.models.providers.toolcalls import ToolSpec, reply_message


class EpisodeBudgetExceeded(ProviderError):
    """An episode asked for more model calls, sampled tokens or time than its budget allows."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        """``calls``, ``tokens`` or ``timeout``."""
        super().__init__(message)


@dataclass
class ModelCall:
    """One model call of an episode, as the model saw and produced it."""

    agent: str
    """Who called: the label the policy was given (:meth:`PolicyProvider.named`), else the calling agent's name
    (``gen_ai.agent.name`` of the runtime's current ``chat`` span), else ``policy``."""
    messages: list[Message]
    """The conversation the agent sent (the prompt, before the chat template)."""
    tools: list[str]
    """Names of the tools offered."""
    prompt_ids: list[int]
    """The exact ids fed to the model."""
    token_ids: list[int]
    """The ids it sampled."""
    logprobs: list[float]
    """Each sampled id's log-probability under the sampling distribution."""
    text: str
    finish_reason: str
    seconds: float
    reply: Message | None = None
    """The assistant message the agent received (tool calls read out)."""

    def to_json(self) -> dict[str, Any]:
        return {"agent": self.agent, "messages": [m.model_dump(mode="json", exclude_none=True) for m in self.messages],
                "tools": self.tools, "prompt_ids": self.prompt_ids, "token_ids": self.token_ids,
                "logprobs": self.logprobs, "text": self.text, "finish_reason": self.finish_reason,
                "seconds": self.seconds,
                "reply": self.reply.model_dump(mode="json", exclude_none=True) if self.reply else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelCall:
        reply = data.get("reply")
        return cls(data["agent"], [Message.model_validate(m) for m in data["messages"]], list(data["tools"]),
                   list(data["prompt_ids"]), list(data["token_ids"]), list(data["logprobs"]), data["text"],
                   data["finish_reason"], float(data["seconds"]),
                   Message.model_validate(reply) if reply else None)


@dataclass
class EpisodeRecorder:
    """What one episode's policy calls collect, and the limits they run under."""

    generator: torch.Generator | None = None
    """Seeds every sampled token of the episode (None: torch's global generator)."""
    max_calls: int | None = None
    max_tokens: int | None = None
    deadline: float | None = None
    """``time.monotonic()`` after which the next call fails."""
    batcher: CallBatcher | None = None
    """Set when the episode runs beside others whose model calls are decoded together."""
    calls: list[ModelCall] = field(default_factory=list)

    @property
    def sampled_tokens(self) -> int:
        return sum(len(c.token_ids) for c in self.calls)

    def check(self) -> int | None:
        """Raise :class:`EpisodeBudgetExceeded` when no call may start; else the tokens left (None: no limit)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise EpisodeBudgetExceeded("timeout", "the episode ran past its time limit")
        if self.max_calls is not None and len(self.calls) >= self.max_calls:
            raise EpisodeBudgetExceeded("calls", f"the episode made {len(self.calls)} model calls "
                                                 f"(its budget is {self.max_calls})")
        if self.max_tokens is None:
            return None
        left = self.max_tokens - self.sampled_tokens
        if left <= 0:
            raise EpisodeBudgetExceeded("tokens", f"the episode sampled {self.sampled_tokens} tokens "
                                                  f"(its budget is {self.max_tokens})")
        return left


_recorder: contextvars.ContextVar[EpisodeRecorder | None] = contextvars.ContextVar("agentladder_episode",
                                                                                    default=None)


@contextmanager
def recording(recorder: EpisodeRecorder) -> Iterator[EpisodeRecorder]:
    """Run an episode with ``recorder`` collecting its policy calls."""
    token = _recorder.set(recorder)
    try:
        yield recorder
    finally:
        _recorder.reset(token)


class PolicyProvider(Provider):
    """Agents' model calls sampled from a rollout backend, each one recorded (see the module docstring).

    ``rollout`` is a :class:`~agentladder.models.rollout.RolloutBackend`; ``sampling`` the trainer's
    settings (its ``max_new_tokens`` is the most one call may sample). Calls are labelled with the name
    of the agent making them (read from the runtime's current ``chat`` span, as the GenAI conventions
    put it there); ``agent`` or :meth:`named` fixes the label instead.
    """

    provider_name = "agentladder.policy"

    def __init__(self, rollout: Any, tokenizer: Any, sampling: SamplingParams, *, agent: str | None = None,
                 tool_mode: str = "auto", name: str = "policy"):
        self.rollout = rollout
        self.tokenizer = tokenizer
        self.sampling = sampling
        self.agent = agent
        self.tool_mode = tool_mode
        self.name = name

    def named(self, agent: str) -> PolicyProvider:
        """The same policy, its calls labelled ``agent`` (which agents are trained is chosen by these labels)."""
        return PolicyProvider(self.rollout, self.tokenizer, self.sampling, agent=agent, tool_mode=self.tool_mode,
                              name=self.name)

    def _request(self, messages: Sequence[Message], tools: Sequence[ToolSpec], max_new_tokens: int,
                 json_output: bool) -> tuple[EpisodeRecorder | None, list[int], SamplingParams]:
        """The episode's recorder (its budgets checked), the prompt's exact ids, and the call's sampling settings."""
        recorder = _recorder.get()
        left = recorder.check() if recorder is not None else None
        budget = min(max_new_tokens, self.sampling.max_new_tokens, *(() if left is None else (left,)))
        params = dataclasses.replace(self.sampling, max_new_tokens=budget,
                                     stop_at_json=self.sampling.stop_at_json or json_output or bool(tools))
        return recorder, chat_prompt_ids(self.tokenizer, messages, tools, self.tool_mode), params

    def _reply(self, recorder: EpisodeRecorder | None, messages: Sequence[Message], tools: Sequence[ToolSpec],
               ids: list[int], c: Any, seconds: float, on_text: TextFn | None) -> ChatResponse:
        """The agent's answer from a completion, the call recorded in the episode."""
        message = reply_message(c.text.strip(), tools)
        if recorder is not None:
            recorder.calls.append(ModelCall(self.agent or _caller() or "policy", list(messages),
                                            [t["function"]["name"] for t in tools], list(ids), list(c.token_ids),
                                            list(c.logprobs), c.text, c.finish_reason, seconds, message))
        if on_text is not None and c.text:
            on_text(c.text)
        finish = "tool_calls" if message.tool_calls else c.finish_reason
        return ChatResponse(message, Usage(len(ids), len(c.token_ids)), self.name, finish, seconds)

    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False, on_text: TextFn | None = None) -> ChatResponse:
        start = time.perf_counter()
        recorder, ids, params = self._request(messages, tools, max_new_tokens, json_output)
        generator = recorder.generator if recorder is not None else None
        (c,) = self.rollout.generate([ids], 1, params, generator)[0]
        return self._reply(recorder, messages, tools, ids, c, time.perf_counter() - start, on_text)

    async def achat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
                    temperature: float = 0.0, json_output: bool = False,
                    on_text: TextFn | None = None) -> ChatResponse:
        """:meth:`chat` in the caller's thread (one model, sampled in a fixed order, never left running by a
        cancelled episode); in an episode with a :class:`CallBatcher`, decoded together with the other
        episodes' calls."""
        recorder = _recorder.get()
        if recorder is None or recorder.batcher is None:
            return self.chat(messages, tools=tools, max_new_tokens=max_new_tokens, temperature=temperature,
                             json_output=json_output, on_text=on_text)
        start = time.perf_counter()
        recorder, ids, params = self._request(messages, tools, max_new_tokens, json_output)
        assert recorder is not None and recorder.batcher is not None
        c = await recorder.batcher.submit(ids, params)
        return self._reply(recorder, messages, tools, ids, c, time.perf_counter() - start, on_text)


class CallBatcher:
    """Concurrent episodes' model calls decoded together: a batch goes when every running episode waits on the model.

    Waiting for all of them (rather than for a moment) makes the batches a function of the episodes' logic,
    not of timing, so a seeded run samples the same tokens again. Calls with different settings (token budgets
    left) go as separate batches of the same round; round ``k`` samples with a generator seeded from ``(seed, k)``.
    Calls of a round with the same prompt ids (a group's episodes on their first call, and on later calls
    while their replies agree) are prefilled once and sampled as that many sequences
    (:func:`sample_each`). A batch that fails fails every call waiting in it, never leaves one waiting.
    """

    def __init__(self, rollout: Any, seed: int, device: torch.device | str = "cpu"):
        self.rollout = rollout
        self.seed = seed
        self.device = device
        self.active = 0
        self.rounds = 0
        self.pending: list[tuple[list[int], SamplingParams, asyncio.Future]] = []

    def start(self) -> None:
        """An episode begins."""
        self.active += 1

    def finish(self) -> None:
        """An episode ended (or failed): the others may now all be waiting."""
        self.active -= 1
        self._flush()

    async def submit(self, ids: list[int], params: SamplingParams) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((ids, params, future))
        self._flush()
        return await future

    def _flush(self) -> None:
        self.pending = [p for p in self.pending if not p[2].done()]  # a timed-out episode's call is dropped
        if not self.pending or len(self.pending) < self.active:
            return
        batch, self.pending = self.pending, []
        seed = (self.seed + 1_000_003 * self.rounds) % (1 << 62)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        self.rounds += 1
        by_params: dict[str, tuple[SamplingParams, list[tuple[list[int], asyncio.Future]]]] = {}
        for ids, params, future in batch:
            by_params.setdefault(repr(params), (params, []))[1].append((ids, future))
        for params, items in by_params.values():
            try:
                out = sample_each(self.rollout, [ids for ids, _ in items], params, generator)
            except Exception as err:  # every waiting episode sees the failure as its own
                for _, future in items:
                    future.set_exception(err)
                continue
            for (_, future), completion in zip(items, out, strict=True):
                future.set_result(completion)


def sample_each(rollout: Any, prompts: Sequence[Sequence[int]], params: SamplingParams,
                generator: torch.Generator | None = None) -> list[Any]:
    """One sampled completion for each prompt, in order; a prompt that comes ``k`` times is prefilled once.

    Identical prompts become one prompt with ``n = k`` (the rollout's groups: one prefill, its keys and
    values repeated for each sequence), all in one call with one ``n`` per distinct prompt, so the round
    is decoded as one batch whatever its repeats. Which completion goes to which copy is fixed by their
    order, so a seeded round samples the same tokens again.
    """
    rows: dict[tuple[int, ...], list[int]] = {}
    for i, ids in enumerate(prompts):
        rows.setdefault(tuple(ids), []).append(i)
    keys = list(rows)
    counts = [len(rows[k]) for k in keys]
    done = rollout.generate([list(k) for k in keys], counts[0] if len(set(counts)) == 1 else counts, params,
                            generator)
    out: list[Any] = [None] * len(prompts)
    for key, group in zip(keys, done, strict=True):
        for i, completion in zip(rows[key], group, strict=True):
            out[i] = completion
    return out


def _caller() -> str | None:
    """The agent name on the current span (the agents runtime opens a ``chat`` span around each model call)."""
    attributes = getattr(trace.get_current_span(), "attributes", None) or {}
    name = attributes.get("gen_ai.agent.name")
    return str(name) if name else None


__all__ = ["CallBatcher", "EpisodeBudgetExceeded", "EpisodeRecorder", "ModelCall", "PolicyProvider", "recording",
           "sample_each"]
