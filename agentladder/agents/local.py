"""Local transformers models as chat providers; specialists tuned as LoRA adapters share one base in memory.

A :class:`ModelPool` loads each base model once. A LoRA run folder (one with
``adapter_config.json``) is attached to its base as a named adapter of one
``PeftModel``; every :class:`LocalChat` that names that folder, or another
adapter of the same base, uses the same weights and switches the active
adapter per call (``set_adapter``), and a call to the plain base runs with
adapters disabled. So three specialists tuned from SmolLM2-135M cost one
copy of the base plus three small adapters, not three models.

Calls to one base take turns (a lock per base): the adapter is a property of
the shared model, and generation on a CPU gains nothing from interleaving.

Tool calls: when the tokenizer's chat template takes a ``tools`` list it is
passed the tools and the model's ``<tool_call>`` blocks are read back;
otherwise the tools are described in the system prompt (the JSON fallback of
:mod:`agentladder.agents.toolcalls`). With ``json_output`` or tools offered,
generation stops once the first JSON object's braces balance.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentladder.agents.providers import (
    ChatProvider,
    ChatResponse,
    ToolSpec,
    Usage,
    tool_names,
    with_fallback_tools,
)
from agentladder.agents.toolcalls import parse_tool_calls
from agentladder.data.schema import Message


@dataclass
class _Base:
    model: Any
    tokenizer: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapters: dict[str, str] = field(default_factory=dict)
    """Adapter name -> run folder, for the adapters attached to this base."""
    brace_counts: Any = None


class ModelPool:
    """Loaded base models by spec, each with the LoRA adapters attached to it."""

    def __init__(self, *, dtype: str = "float32", device: str = "cpu"):
        self.dtype, self.device = dtype, device
        self._bases: dict[str, _Base] = {}
        self._lock = threading.Lock()

    def acquire(self, spec: str) -> tuple[_Base, str | None]:
        """``(base, adapter name or None)`` for a model spec, loading what is missing."""
        from agentladder.models.loading import TINY_ALIAS, _adapter_base, resolve

        folder = None if spec == TINY_ALIAS else Path(resolve(spec))
        with self._lock:
            if folder is not None and (folder / "adapter_config.json").exists():
                base_spec = _adapter_base(folder)
                base = self._load_base(base_spec)
                name = _adapter_name(folder)
                if name not in base.adapters:
                    self._attach(base, folder, name)
                return base, name
            return self._load_base(spec), None

    def add_base(self, spec: str, model: Any, tokenizer: Any) -> None:
        """Register an already loaded model under ``spec`` (tests, or a model built in code)."""
        with self._lock:
            self._bases[spec] = _Base(model.eval(), tokenizer)

    def _load_base(self, spec: str) -> _Base:
        if spec not in self._bases:
            from agentladder.models.loading import load_model

            model, tokenizer = load_model(spec, dtype=self.dtype, device=self.device)
            self._bases[spec] = _Base(model.eval(), tokenizer)
        return self._bases[spec]

    def _attach(self, base: _Base, folder: Path, name: str) -> None:
        from peft import PeftModel

        if base.adapters:
            base.model.load_adapter(str(folder), adapter_name=name)
        else:
            base.model = PeftModel.from_pretrained(base.model, str(folder), adapter_name=name).eval()
        base.adapters[name] = str(folder)

    def base_models(self) -> int:
        """How many base models are loaded (one per base, however many adapters)."""
        return len(self._bases)


def _adapter_name(folder: Path) -> str:
    # peft adapter names must be valid module attribute names.
    return "a_" + "".join(ch if ch.isalnum() else "_" for ch in str(folder.resolve()))


@functools.cache
def default_pool() -> ModelPool:
    return ModelPool()


class LocalChat(ChatProvider):
    """A local model (alias, folder, LoRA run folder or hub id) from a shared :class:`ModelPool`."""

    provider_name = "agentladder.local"

    def __init__(self, spec: str, *, pool: ModelPool | None = None, name: str | None = None,
                 tool_mode: str = "auto"):
        if tool_mode not in ("auto", "native", "json"):
            raise ValueError(f"tool_mode must be 'auto', 'native' or 'json', not {tool_mode!r}")
        self.spec = spec
        self.name = name or spec
        self.pool = pool or default_pool()
        self.tool_mode = tool_mode

    def prepare(self) -> None:
        """Load the model now, so the first call's latency leaves loading out."""
        self.pool.acquire(self.spec)

    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False) -> ChatResponse:
        import contextlib

        import torch

        base, adapter = self.pool.acquire(self.spec)
        start = time.perf_counter()
        tok = base.tokenizer
        text = self._render(tok, list(messages), list(tools))
        ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]  # (1, T)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=tok.eos_token_id)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=1.0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with base.lock:
            if json_output or tools:
                from transformers import StoppingCriteriaList

                from agentladder.evals.local import _stop_after_json_class

                kwargs["stopping_criteria"] = StoppingCriteriaList([_stop_after_json_class()(*_braces(base), 1)])
            if adapter is not None:
                base.model.set_adapter(adapter)
                switch = contextlib.nullcontext()
            elif base.adapters:
                switch = base.model.disable_adapter()  # the plain base of a shared model
            else:
                switch = contextlib.nullcontext()
            device = next(base.model.parameters()).device
            with switch, torch.inference_mode():
                out = base.model.generate(input_ids=ids.to(device), attention_mask=torch.ones_like(ids).to(device),
                                          **kwargs)
        new = out[0, ids.shape[1]:]
        n_out = int((new != pad).sum()) if pad != tok.eos_token_id else len(new)
        answer = tok.decode(new, skip_special_tokens=True).strip()
        content, calls = parse_tool_calls(answer, tool_names(tools))
        finish = "tool_calls" if calls else ("length" if len(new) >= max_new_tokens else "stop")
        message = Message(role="assistant", content=content if content is not None else "", tool_calls=calls or None)
        return ChatResponse(message, Usage(int(ids.shape[1]), n_out), self.name, finish, time.perf_counter() - start)

    def _render(self, tok: Any, messages: list[Message], tools: list[ToolSpec]) -> str:
        from agentladder.models.chat import _template_dicts, render

        native = "tools" in (tok.chat_template or "") if self.tool_mode == "auto" else self.tool_mode == "native"
        if tools and native:
            return tok.apply_chat_template(_template_dicts(tok, messages), tools=tools, tokenize=False,
                                           add_generation_prompt=True)
        return render(tok, with_fallback_tools(messages, tools), add_generation_prompt=True)


def _braces(base: _Base):
    """Per-token counts of ``{`` and ``}`` over the vocabulary, for stopping after one JSON object."""
    if base.brace_counts is None:
        import torch

        tok = base.tokenizer
        size = max(len(tok), getattr(base.model.config, "vocab_size", 0) or 0)
        pieces = tok.convert_ids_to_tokens(list(range(len(tok))))
        pieces += [""] * (size - len(pieces))
        base.brace_counts = (torch.tensor([(p or "").count("{") for p in pieces]),  # (V,)
                             torch.tensor([(p or "").count("}") for p in pieces]))
    return base.brace_counts
