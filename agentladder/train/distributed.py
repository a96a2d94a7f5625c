"""Data-parallel set-up through torch distributed.

Launched by ``torchrun --nproc_per_node N`` or ``accelerate launch``, both of
which set ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``; a plain ``python`` run is a
world of one and needs no process group. CPUs use the gloo backend, GPUs NCCL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_sum(self, value: float | int | torch.Tensor) -> float:
        """Sum a number over every process (a no-op in a world of one)."""
        if not self.distributed:
            return float(value)
        t = torch.as_tensor(value, dtype=torch.float64, device=self._comm_device).clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item())

    @property
    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def init_world(device: str | None = None) -> World:
    """Join the process group when launched with several processes; pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return World(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def wrap_model(model, world: World, strategy: str = "ddp"):
    """Wrap for data parallelism: ``ddp`` replicates, ``fsdp`` shards (FSDP2 ``fully_shard``)."""
    if not world.distributed:
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [world.device.index] if world.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        layers = _decoder_layers(model)
        for layer in layers:
            fully_shard(layer)
        fully_shard(model)
        return model
    raise ValueError(f"unknown strategy {strategy!r}: choose ddp or fsdp")


def _decoder_layers(model) -> list[torch.nn.Module]:
    """The repeated transformer blocks, the unit FSDP shards by."""
    classes = set(getattr(model, "_no_split_modules", None) or [])
    base = getattr(model, "base_model", model)
    classes |= set(getattr(getattr(base, "model", base), "_no_split_modules", None) or [])
    return [m for m in model.modules() if type(m).__name__ in classes]


def unwrap(model):
    return model.module if hasattr(model, "module") and hasattr(model, "require_backward_grad_sync") else model
