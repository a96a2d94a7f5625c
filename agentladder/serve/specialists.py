"""What the server serves: one base model in memory, its LoRA specialists by name, and the embedding model.

The request's ``model`` picks what answers, as with vLLM: the base model's name
(the ``--model`` spec, or ``--served-model-name``) runs the base with adapters off;
a specialist's name (``--adapter NAME=PATH``, or ``/v1/load_lora_adapter``) runs its
adapter. Every specialist is a peft adapter attached to the one base
(``PeftModel``), so four specialists cost one base plus four small adapters, and
their requests share decoding steps (peft's mixed-batch ``adapter_names``).

Attaching and detaching change the model, so they run on the scheduler's worker
between two steps (:meth:`Scheduler.call <agentladder.serve.scheduler.Scheduler.call>`);
a detach waits until no running or waiting request uses the adapter. peft's
adapter names are internal (``s1``, ``s2``, ...), so a specialist may be named
anything a client sends (``parser``, ``team/parser-v2``).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peft import PeftModel

from agentladder.errors import ConfigError
from agentladder.models.engine import Engine
from agentladder.models.loading import load_model, resolve


@dataclass
class Specialist:
    """A served LoRA adapter."""

    name: str
    path: str
    adapter: str
    """peft's name for it."""
    created: int = field(default_factory=lambda: int(time.time()))


class Served:
    """The base model, its engine, and the specialists attached to it (see the module docstring)."""

    def __init__(self, spec: str, *, name: str | None = None, dtype: str = "float32", device: str = "cpu",
                 max_len: int | None = None, model: Any = None, tokenizer: Any = None):
        if model is None:
            folder = None if spec == "tiny" else Path(resolve(spec))
            if folder is not None and (folder / "adapter_config.json").exists():
                raise ConfigError(f"{spec} is a LoRA adapter; serve its base with --model and the adapter "
                                  f"with --adapter NAME={spec}")
            model, tokenizer = load_model(spec, dtype=dtype, device=device)
        self.spec = spec
        self.name = name or spec
        self.engine = Engine(model.eval(), tokenizer, prefix_cache=False)
        limit = getattr(model.config, "max_position_embeddings", None) or 2048
        self.max_len = min(max_len, limit) if max_len else limit
        self.created = int(time.time())
        self.specialists: dict[str, Specialist] = {}
        self._ids = itertools.count(1)

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    def adapter_for(self, model: str) -> str | None | bool:
        """peft's adapter name for a requested model, None for the base, False when nothing has that name."""
        if model == self.name:
            return None
        found = self.specialists.get(model)
        return found.adapter if found is not None else False

    def attach(self, name: str, path: str | Path, *, replace: bool = False) -> Specialist:
        """Load the LoRA run at ``path`` as specialist ``name`` (on the worker thread when serving)."""
        if name == self.name:
            raise ConfigError(f"{name!r} is the base model's name")
        if name in self.specialists and not replace:
            raise ConfigError(f"the adapter {name!r} has already been loaded")
        folder = Path(path).expanduser()
        if not (folder / "adapter_config.json").exists():
            raise ConfigError(f"{folder} is not a LoRA adapter folder (no adapter_config.json)")
        adapter = f"s{next(self._ids)}"
        model = self.engine.model
        try:
            if hasattr(model, "peft_config"):
                model.load_adapter(str(folder), adapter_name=adapter)
            else:
                self.engine.model = PeftModel.from_pretrained(model, str(folder), adapter_name=adapter).eval()
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            raise ConfigError(f"cannot load the adapter at {folder}: {str(err).splitlines()[0][:300]}") from None
        old = self.specialists.get(name)
        self.specialists[name] = Specialist(name, str(folder), adapter)
        if old is not None:
            self._delete(old.adapter)
        return self.specialists[name]

    def forget(self, name: str) -> Specialist:
        """Stop routing requests to ``name`` (its weights go with :meth:`delete`)."""
        try:
            return self.specialists.pop(name)
        except KeyError:
            raise ConfigError(f"the adapter {name!r} cannot be found") from None

    def delete(self, specialist: Specialist) -> None:
        """Free a forgotten specialist's weights (on the worker thread when serving)."""
        self._delete(specialist.adapter)

    def _delete(self, adapter: str) -> None:
        model = self.engine.model
        if len(model.peft_config) == 1:  # the last adapter: back to the plain base model
            self.engine.model = model.unload().eval()
        else:
            model.delete_adapter(adapter)

    def cards(self) -> list[dict[str, Any]]:
        """``/v1/models`` entries: the base, then each specialist with the base as its parent."""
        out = [{"id": self.name, "object": "model", "created": self.created, "owned_by": "agentladder",
                "root": self.spec, "parent": None, "max_model_len": self.max_len}]
        for s in self.specialists.values():
            out.append({"id": s.name, "object": "model", "created": s.created, "owned_by": "agentladder",
                        "root": s.path, "parent": self.name, "max_model_len": self.max_len})
        return out


__all__ = ["Served", "Specialist"]
