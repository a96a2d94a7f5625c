"""LoRA adapters through peft: attach, save, load, merge, and the reference policy.

The reference policy of a LoRA model is the same model with its adapters
disabled (:func:`reference_mode`), never a second copy in memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoraSettings:
    r: int = 16
    """Rank of the low-rank update."""
    alpha: int = 32
    """Scale numerator: the update is multiplied by ``alpha / r``."""
    dropout: float = 0.0
    target_modules: list[str] | str = field(default_factory=lambda: "all-linear")
    """Modules that get adapters; ``all-linear`` is every projection but the output head."""


def attach_lora(model, settings: LoraSettings | None = None):
    """Wrap ``model`` in a ``PeftModel`` with fresh trainable adapters (base weights frozen)."""
    from peft import LoraConfig, get_peft_model

    s = settings or LoraSettings()
    config = LoraConfig(
        r=s.r, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=s.target_modules, task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)


def is_lora(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def save_adapter(model, path: str | Path) -> None:
    """Write only the adapter weights and config (``adapter_model.safetensors``)."""
    model.save_pretrained(str(path))


def load_adapter(base_model, path: str | Path, *, trainable: bool = False):
    """Attach the adapter saved at ``path`` to ``base_model``."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, str(path), is_trainable=trainable)


def merge(model):
    """Fold the adapters into the base weights and return the plain model."""
    return model.merge_and_unload()


@contextlib.contextmanager
def reference_mode(model) -> Iterator[None]:
    """Run the reference policy: for a LoRA model, the base with adapters disabled.

    For a model without adapters this is a no-op (full fine-tuning keeps a frozen
    copy or precomputed reference log-probabilities instead).
    """
    if is_lora(model):
        with model.disable_adapter():
            yield
    else:
        yield
