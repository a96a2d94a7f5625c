"""Pieces every trainer shares: run settings kept for resume, loading the model to train, the final save."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from agentladder.data.io import atomic_write_text
from agentladder.models.loading import RUN_META
from agentladder.models.quiet import quiet_transformers

RUN_CONFIG = "train_config.json"
"""The settings a run was started with, kept in its folder so it can resume."""

C = TypeVar("C", bound=BaseModel)


def run_config(cls: type[C], config: C | None, kwargs: dict[str, Any], resume: bool) -> C:
    """The settings of a new run (``config`` or ``cls(**kwargs)``), or those saved by the run being resumed.

    A resumed run may change only how it reports (``progress``, ``tensorboard``).
    """
    out_dir = Path(config.out_dir if config else kwargs["out_dir"])  # type: ignore[attr-defined]
    saved = out_dir / RUN_CONFIG
    if resume:
        if not saved.exists():
            raise FileNotFoundError(f"{out_dir} holds no run to resume (no {RUN_CONFIG})")
        return cls.model_validate_json(saved.read_text()).model_copy(
            update={k: v for k, v in kwargs.items() if k in ("progress", "tensorboard")}
        )
    if (out_dir / "checkpoints").exists() and any((out_dir / "checkpoints").iterdir()):
        raise FileExistsError(f"{out_dir} already holds a run; resume it, or choose another output folder")
    return config or cls(**kwargs)


def _full_model_state(model, world) -> dict | None:
    """Under FSDP, gather the sharded weights into one CPU state dict (every process calls this)."""
    if not world.distributed or not any(type(p).__name__ == "DTensor" for p in model.parameters()):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    # Tied weights come back under both names; keep the names the model itself reports.
    names = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
    return {k: v for k, v in state.items() if k in names}


def _save_final(model, tokenizer, out_dir: Path, meta: dict[str, Any], state_dict: dict | None = None) -> None:
    """Write the trained model into ``out_dir`` atomically, file by file, metadata last."""
    tmp = out_dir / ".final.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    with quiet_transformers():  # no "Writing model shards" bar
        if state_dict is None:
            model.save_pretrained(str(tmp))
        else:
            model.save_pretrained(str(tmp), state_dict=state_dict)
        tokenizer.save_pretrained(str(tmp))
    for f in tmp.iterdir():
        os.replace(f, out_dir / f.name)
    tmp.rmdir()
    atomic_write_text(out_dir / RUN_META, json.dumps(meta, indent=2))


def _base_spec(spec: str) -> str:
    path = Path(spec)
    return str(path.resolve()) if path.exists() else spec


def lineage_base(spec: str, lora: bool) -> str:
    """What a run's output stands on: the model spec, or for an adapter continued from a LoRA run, that run's base."""
    if lora and (Path(spec) / RUN_META).exists():
        base = json.loads((Path(spec) / RUN_META).read_text()).get("base_model")
        if base:
            return base
    return _base_spec(spec)
