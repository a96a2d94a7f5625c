"""Atomic, resumable checkpoints: trainable weights, optimizer, scheduler, RNG, data position.

A checkpoint is a folder ``checkpoints/step-000042`` written under a temporary
name and renamed into place in one ``os.replace``, so a kill at any moment
leaves either the previous checkpoint or the new one, never half of one.
The data position is the optimizer step: the data order is a pure function
of the seed and the epoch (see :mod:`agentladder.train.loop`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from agentladder.data.rng import rng_state, set_rng_state

STEP_DIR = re.compile(r"^step-(\d+)$")


def _full_state(model, optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Trainable weights and optimizer state as full (unsharded) CPU tensors.

    torch's distributed state-dict API gathers FSDP shards and keys the optimizer
    state by parameter name, so one checkpoint format serves a single process,
    DDP and FSDP alike. Every process must call it; rank 0 receives the tensors.
    """
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    weights = get_model_state_dict(model, options=opts)
    optim = get_optimizer_state_dict(model, optimizer, options=opts)
    # Tied weights (embeddings and output head) appear under two names; keep the one
    # named_parameters() reports, which is also the one loading checks for.
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.contiguous() for k, v in weights.items() if k in names}, optim


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        m = STEP_DIR.match(child.name)
        if m and (child / "state.json").exists():
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def save_checkpoint(
    root: str | Path,
    step: int,
    *,
    model,
    optimizer,
    scheduler,
    extra: dict | None = None,
    keep_last: int = 2,
    rank: int = 0,
    barrier=None,
) -> Path:
    """Write checkpoint ``step`` atomically; keep the newest ``keep_last`` checkpoints.

    Rank 0 writes weights, optimizer and scheduler; every rank writes its own RNG state.
    """
    root = Path(root)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}"
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    if barrier:
        barrier()
    torch.save(rng_state(), tmp / f"rng-{rank}.pt")
    weights, optim = _full_state(model, optimizer)
    if rank == 0:
        save_file(weights, str(tmp / "trainable.safetensors"))
        torch.save({"optimizer": optim, "scheduler": scheduler.state_dict()}, tmp / "optim.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, **(extra or {})}))
    if barrier:
        barrier()
    if rank == 0:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in list_checkpoints(root)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    if barrier:
        barrier()
    return final


def load_checkpoint(path: str | Path, *, model, optimizer, scheduler, rank: int = 0) -> dict:
    """Restore a checkpoint into live objects; return its ``state.json`` contents."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    path = Path(path)
    # Every process reads the full state and keeps its own part (its shard under FSDP).
    weights = load_file(str(path / "trainable.safetensors"))
    missing = [n for n, p in model.named_parameters() if p.requires_grad and n not in weights]
    if missing:
        raise RuntimeError(f"{path} does not match this model: no weights for {missing[:3]}")
    states = torch.load(path / "optim.pt", weights_only=False)
    opts = StateDictOptions(full_state_dict=True, strict=False)
    set_model_state_dict(model, weights, options=opts)
    set_optimizer_state_dict(model, optimizer, states["optimizer"], options=opts)
    scheduler.load_state_dict(states["scheduler"])
    rng_file = path / f"rng-{rank}.pt"
    if rng_file.exists():
        set_rng_state(torch.load(rng_file, weights_only=False))
    return json.loads((path / "state.json").read_text())
