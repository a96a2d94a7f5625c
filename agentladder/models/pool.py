"""Loaded models by spec: each base once, with the LoRA adapters of the specialists tuned from it.

A :class:`ModelPool` loads each base model once. A LoRA run folder (one with
``adapter_config.json``) is attached to its base as a named adapter of one
``PeftModel``, so three specialists tuned from SmolLM2-135M cost one copy of
the base plus three small adapters, not three models; each base has one
:class:`~agentladder.models.engine.Engine`, and a call names the adapter each
of its prompts runs with (the plain base runs with adapters disabled).
Prompts for several specialists of one base go through one batch
(:meth:`ModelPool.generate`, peft's mixed-batch ``adapter_names``).

Calls to one base take turns (a lock per base): the active adapter is a
property of the shared model, and generation on a CPU gains nothing from
interleaving.

A pool with ``merge_adapters`` instead folds a LoRA run into its base when it
loads it (the same outputs, without the adapters' extra matmuls): what an
evaluation of one model at a time wants.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peft import PeftModel

from agentladder.models.engine import Completion, Engine, Prompt, SamplingParams, TokenCallback
from agentladder.models.loading import TINY_ALIAS, adapter_base, load_model, resolve


@dataclass
class LoadedBase:
    """One base model in memory, its engine, and the adapters attached to it."""

    model: Any
    tokenizer: Any
    engine: Engine
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapters: dict[str, str] = field(default_factory=dict)
    """Adapter name -> run folder, for the adapters attached to this base."""


class ModelPool:
    """Loaded base models by spec, each with the LoRA adapters attached to it (see the module docstring)."""

    def __init__(self, *, dtype: str = "float32", device: str = "cpu", merge_adapters: bool = False,
                 prefix_cache: bool = True):
        self.dtype, self.device = dtype, device
        self.merge_adapters = merge_adapters
        self.prefix_cache = prefix_cache
        self._bases: dict[str, LoadedBase] = {}
        self._lock = threading.Lock()

    def acquire(self, spec: str) -> tuple[LoadedBase, str | None]:
        """``(base, adapter name or None)`` for a model spec, loading what is missing."""
        with self._lock:
            if spec in self._bases:
                return self._bases[spec], None
            folder = None if spec == TINY_ALIAS else Path(resolve(spec))
            if folder is not None and (folder / "adapter_config.json").exists() and not self.merge_adapters:
                base = self._load_base(adapter_base(folder))
                name = _adapter_name(folder)
                if name not in base.adapters:
                    self._attach(base, folder, name)
                return base, name
            return self._load_base(spec), None

    def add_base(self, spec: str, model: Any, tokenizer: Any) -> LoadedBase:
        """Register an already loaded model under ``spec`` (tests, or a model built in code).

        Its train or eval mode is left as it is: the engine samples in eval mode and puts the mode back.
        """
        with self._lock:
            self._bases[spec] = self._entry(model, tokenizer)
            return self._bases[spec]

    def generate(self, specs: Sequence[str], prompts: Sequence[Prompt], params: SamplingParams, *,
                 batch_size: int | None = None, on_token: TokenCallback | None = None,
                 progress: Callable[[int], None] | None = None) -> list[Completion]:
        """One completion per ``(spec, prompt)``, in order; the prompts of one base's specialists share batches."""
        if len(specs) != len(prompts):
            raise ValueError(f"{len(specs)} model specs for {len(prompts)} prompts")
        by_base: dict[int, tuple[LoadedBase, list[int], list[str | None]]] = {}
        for i, spec in enumerate(specs):
            base, adapter = self.acquire(spec)
            entry = by_base.setdefault(id(base), (base, [], []))
            entry[1].append(i)
            entry[2].append(adapter)
        out: list[Completion | None] = [None] * len(prompts)
        for base, idx, adapters in by_base.values():
            callback = None if on_token is None else (lambda r, t, idx=idx: on_token(idx[r], t))
            with base.lock:
                done = base.engine.generate([prompts[i] for i in idx], params, batch_size=batch_size,
                                            adapters=adapters if base.adapters else None, on_token=callback,
                                            progress=progress)
            for i, group in zip(idx, done, strict=True):
                out[i] = group[0]
        return out  # type: ignore[return-value]

    def release(self, spec: str) -> None:
        """Forget a base loaded under ``spec`` (its memory goes with the last reference)."""
        with self._lock:
            self._bases.pop(spec, None)

    def clear(self) -> None:
        """Forget every loaded model."""
        with self._lock:
            self._bases.clear()

    def base_models(self) -> int:
        """How many base models are loaded (one per base, however many adapters)."""
        return len(self._bases)

    def _entry(self, model: Any, tokenizer: Any) -> LoadedBase:
        return LoadedBase(model, tokenizer, Engine(model, tokenizer, prefix_cache=self.prefix_cache))

    def _load_base(self, spec: str) -> LoadedBase:
        if spec not in self._bases:
            model, tokenizer = load_model(spec, dtype=self.dtype, device=self.device)
            if self.merge_adapters and hasattr(model, "merge_and_unload"):
                model = model.merge_and_unload()
            self._bases[spec] = self._entry(model.eval(), tokenizer)
        return self._bases[spec]

    def _attach(self, base: LoadedBase, folder: Path, name: str) -> None:
        if base.adapters:
            base.model.load_adapter(str(folder), adapter_name=name)
        else:
            base.model = PeftModel.from_pretrained(base.model, str(folder), adapter_name=name).eval()
            base.engine.model = base.model
            base.engine.clear()
        base.adapters[name] = str(folder)


def _adapter_name(folder: Path) -> str:
    # peft adapter names must be valid module attribute names.
    return "a_" + "".join(ch if ch.isalnum() else "_" for ch in str(folder.resolve()))


@functools.cache
def default_pool() -> ModelPool:
    """The process's shared pool: every agent naming a model or specialist of one base shares its weights."""
    return ModelPool()
