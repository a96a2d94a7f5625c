"""Local transformers models as providers: the inference engine behind the provider protocol.

:class:`LocalProvider` takes a model alias, folder, LoRA run folder or hub id
(or a model already in memory) and answers through its base's
:class:`~agentladder.models.engine.Engine` in a
:class:`~agentladder.models.pool.ModelPool`:

- **batches** (:meth:`LocalProvider.complete`, for evaluation and pair
  sampling): prompts sorted by length, the shared prefix computed once,
  finished rows leaving the batch;
- **one conversation** (:meth:`LocalProvider.chat`, for agents): when the
  tokenizer's chat template takes a ``tools`` list it is passed the tools and
  the model's ``<tool_call>`` blocks are read back; otherwise the tools are
  described in the system turn (the JSON fallback of
  :mod:`~agentladder.models.providers.toolcalls`). With ``json_output`` or
  tools offered, generation stops once the first JSON object closes.

Without a ``pool`` the provider has its own, loaded at :meth:`prepare` and
freed at :meth:`close`, with a LoRA run merged into its base (what an
evaluation of one model at a time wants). :class:`LocalChat` draws from the
process's shared pool instead, so specialists tuned from one base share it.

Sampled answers draw from transformers' default top-k of 50
(:func:`~agentladder.models.engine.answer_sampling`), as ``generate`` sampled them before the engine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from agentladder.data.schema import Message
from agentladder.errors import ConfigError
from agentladder.models.chat import _template_dicts, render
from agentladder.models.engine import SamplingParams, TokenCallback, answer_sampling
from agentladder.models.pool import LoadedBase, ModelPool, default_pool
from agentladder.models.providers.base import (
    ChatResponse,
    ProgressFn,
    Prompt,
    Provider,
    TextFn,
    Usage,
)
from agentladder.models.providers.toolcalls import ToolSpec, reply_message, with_fallback_tools


class LocalProvider(Provider):
    """A local model (alias, folder, LoRA run folder or hub id) through the engine; see the module docstring.

    ``batch_size`` is the prompts decoded at once by :meth:`complete`; ``prefix_cache`` turns the
    shared-prefix cache off (own pool only); ``tool_mode`` is ``auto`` (the template's tool calling
    when it has one), ``native`` or ``json``.
    """

    provider_name = "agentladder.local"

    def __init__(self, spec: str | None = None, *, model: Any = None, tokenizer: Any = None,
                 pool: ModelPool | None = None, batch_size: int = 8, dtype: str = "float32",
                 prefix_cache: bool = True, name: str | None = None, tool_mode: str = "auto"):
        if spec is None and (model is None or tokenizer is None):
            raise ConfigError("give a model spec, or a model and its tokenizer")
        if tool_mode not in ("auto", "native", "json"):
            raise ConfigError(f"tool_mode must be 'auto', 'native' or 'json', not {tool_mode!r}")
        self._own_pool = pool is None
        self.pool = pool or ModelPool(dtype=dtype, merge_adapters=True, prefix_cache=prefix_cache)
        self._given = model is not None
        self.spec = spec if spec is not None else f"{type(model).__name__}@{id(model):x}"
        if self._given:
            self.pool.add_base(self.spec, model, tokenizer)
        self.name = name or spec or type(model).__name__
        self.batch_size = batch_size
        self.dtype = dtype
        self.tool_mode = tool_mode
        self.load_seconds = 0.0
        self._base: LoadedBase | None = None
        self._adapter: str | None = None

    @property
    def model(self) -> Any:
        """The loaded model (``None`` before :meth:`prepare` and after :meth:`close`)."""
        return self._base.model if self._base is not None else None

    @property
    def tokenizer(self) -> Any:
        return self._base.tokenizer if self._base is not None else None

    @property
    def engine(self) -> Any:
        """The engine of this model's base (loading it first)."""
        return self._loaded()[0].engine

    def prepare(self) -> None:
        if self._base is None:
            start = time.perf_counter()
            self._base, self._adapter = self.pool.acquire(self.spec)
            self.load_seconds = time.perf_counter() - start

    def close(self) -> None:
        if self._base is not None:
            self._base.engine.clear()
        if self._own_pool and not self._given:
            self.pool.clear()
            self._base = None

    def _loaded(self) -> tuple[LoadedBase, str | None]:
        self.prepare()
        assert self._base is not None
        return self._base, self._adapter

    def _run(self, prompts: Sequence[Any], params: SamplingParams, **kwargs: Any) -> list[Any]:
        """One completion per prompt from this model's engine (its adapter, or the base with adapters off)."""
        base, adapter = self._loaded()
        adapters = [adapter] * len(prompts) if base.adapters else None
        with base.lock:
            out = base.engine.generate(prompts, params, adapters=adapters, **kwargs)
        return [group[0] for group in out]

    def complete(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 stop_at_json: bool = False, progress: ProgressFn | None = None) -> list[str]:
        params = answer_sampling(max_new_tokens, temperature, stop_at_json=stop_at_json)
        done = self._run(prompts, params, batch_size=self.batch_size, progress=progress)
        return [c.text.strip() for c in done]

    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False, on_text: TextFn | None = None) -> ChatResponse:
        start = time.perf_counter()
        base, _ = self._loaded()
        ids = self._prompt_ids(base.tokenizer, list(messages), list(tools))
        stream = _streamer(base.tokenizer, on_text) if on_text is not None else None
        params = answer_sampling(max_new_tokens, temperature, stop_at_json=json_output or bool(tools))
        (c,) = self._run([ids], params, on_token=stream)
        message = reply_message(c.text.strip(), tools)
        finish = "tool_calls" if message.tool_calls else c.finish_reason
        return ChatResponse(message, Usage(len(ids), len(c.token_ids)), self.name, finish,
                            time.perf_counter() - start)

    def _prompt_ids(self, tok: Any, messages: list[Message], tools: list[ToolSpec]) -> list[int]:
        return chat_prompt_ids(tok, messages, tools, self.tool_mode)


def chat_prompt_ids(tok: Any, messages: Sequence[Message], tools: Sequence[ToolSpec],
                    tool_mode: str = "auto") -> list[int]:
    """The token ids a conversation (and the tools offered) is fed to the model as, generation prompt included:
    the template's own tool calling when it has one (``auto``/``native``), else the JSON fallback."""
    native = "tools" in (tok.chat_template or "") if tool_mode == "auto" else tool_mode == "native"
    if tools and native:
        text = tok.apply_chat_template(_template_dicts(tok, list(messages)), tools=list(tools), tokenize=False,
                                       add_generation_prompt=True)
    else:
        text = render(tok, with_fallback_tools(list(messages), list(tools)), add_generation_prompt=True)
    return tok(text, add_special_tokens=False)["input_ids"]


class LocalChat(LocalProvider):
    """A :class:`LocalProvider` drawing from the shared pool by default (the agents runtime's local model),
    so every specialist tuned as a LoRA adapter of one base shares that base in memory."""

    def __init__(self, spec: str, *, pool: ModelPool | None = None, **kwargs: Any):
        super().__init__(spec, pool=pool or default_pool(), **kwargs)


def _streamer(tokenizer: Any, on_text: TextFn) -> TokenCallback:
    """An engine token callback that passes on each new piece of the decoded text."""
    tokens: list[int] = []
    sent = [""]

    def on_token(_: int, token: int) -> None:
        tokens.append(token)
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        if len(text) > len(sent[0]) and not text.endswith("\ufffd"):  # wait for a whole character
            on_text(text[len(sent[0]):])
            sent[0] = text

    return on_token
