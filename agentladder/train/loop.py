"""The one training loop every trainer (SFT, preference, RL) configures.

Read top to bottom, one optimizer step is:

1. take the step's global batch: ``batch_size x grad_accum`` rows per process,
   from a permutation that depends only on ``(seed, epoch)`` - so the data
   position is just the step number, and resuming needs nothing else;
2. count the loss units (trained tokens for SFT, pairs for DPO, ...) in the
   whole global batch, over every micro-batch and every process;
3. for each micro-batch: forward, ``loss = loss_sum / global_units``, backward.
   Dividing by the *global* count makes the summed gradient exactly the
   gradient of the mean over the combined batch, whatever the split into
   micro-batches and processes (DDP averages over processes, so each process
   multiplies by the world size to undo that);
4. clip the gradient norm, step AdamW and the warmup-then-cosine schedule;
5. log, and every ``save_every`` steps write an atomic checkpoint.

Trainers plug in two things: ``collate(rows) -> batch`` (a dict with an
``"n_units"`` entry) and ``loss_fn(model, batch) -> LossOutput``.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from agentladder.data.io import append_json_lines, keep_steps
from agentladder.errors import ConfigError
from agentladder.models.lora import is_lora
from agentladder.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from agentladder.train.distributed import World, init_world, wrap_model
from agentladder.train.plots import plot_history
from agentladder.train.progress import TrainProgress


class TrainConfig(BaseModel):
    """Settings of the shared loop (optimizer, schedule, batching, checkpoints)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    out_dir: str
    """Run folder: checkpoints, metrics and the final model go here."""
    learning_rate: float = 2e-4
    """Peak learning rate of AdamW, reached after the warmup; a cosine decay follows."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay."""
    lora_plus_ratio: float | None = Field(None, ge=1)
    """LoRA+: the adapters' B matrices learn at ``learning_rate`` times this, the rest at ``learning_rate``
    (LoRA runs only). Measured here it helped a run with few updates and hurt one with twice as many;
    see docs/training.md."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """AdamW's moment decay rates."""
    warmup_ratio: float = 0.05
    """Share of the steps spent warming up linearly from 0."""
    min_lr_ratio: float = 0.0
    """The cosine decays to ``learning_rate * min_lr_ratio``."""
    epochs: float = 1.0
    """Passes over the data (a fraction stops part-way)."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides ``epochs``)."""
    max_minutes: float | None = Field(None, gt=0)
    """Wall-clock budget: end the run after the step that finishes past this many minutes of training
    (counted from this call's first step), saving a checkpoint and the final model as a last step does.
    The schedule still spans ``max_steps``; with ``min_lr_ratio: 1`` the rate is constant after the warmup."""
    batch_size: int = Field(4, ge=1)
    """Rows per micro-batch on each process."""
    grad_accum: int = Field(1, ge=1)
    """Micro-batches per optimizer step."""
    max_grad_norm: float | None = 1.0
    """Clip the gradient to this global norm before each update (None: no clipping)."""
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    """``fp32``; ``bf16`` for bfloat16 autocast (trained weights stay fp32; a LoRA run holds its frozen
    base in bfloat16, see :func:`base_dtype`); ``auto``: ``bf16`` where the device
    does bfloat16 arithmetic natively (a GPU that supports it, a CPU with AVX-512 BF16 or AMX), else ``fp32``."""
    seed: int = 0
    """Seeds the data order, fresh adapters' initial weights and sampling."""
    save_every: int = 50
    """Write a resumable checkpoint every this many steps (and at the end)."""
    keep_last: int = 2
    """Checkpoints kept in ``checkpoints/`` (older ones are deleted)."""
    log_every: int = 1
    """Write a line to ``metrics.jsonl`` every this many steps (and at the last)."""
    strategy: Literal["ddp", "fsdp"] = "ddp"
    """Data-parallel strategy when launched with several processes: ``ddp`` or ``fsdp``."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Also write TensorBoard events when the ``tensorboard`` package is installed."""


@dataclass
class LossOutput:
    loss_sum: torch.Tensor
    """Sum of the per-unit losses of the micro-batch (a scalar with grad)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Sums over the micro-batch; the loop adds them up and divides by the units."""


@dataclass
class TrainResult:
    steps: int
    final_loss: float
    history: list[dict[str, Any]]
    out_dir: Path


def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warmup from 0 to 1 over ``warmup_steps``, then cosine to ``min_ratio``."""

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``).

    Without them bfloat16 is emulated and slower than fp32; with them a LoRA step of
    SmolLM2-135M under autocast took about 0.6 of its fp32 time (``bench/sft_precision.py``).
    """
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:  # not Linux
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16``: ``precision`` itself, or what ``auto`` means on ``device``."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_bf16() else "fp32"
    return "fp32"


def base_dtype(config: TrainConfig, lora: bool, device: torch.device) -> torch.dtype:
    """The dtype to load the model in: bfloat16 for LoRA at ``bf16`` (or ``auto`` meaning it), else fp32.

    LoRA never updates the base, and autocast would round its weights to bfloat16 at every
    matmul anyway; holding them in bfloat16 also keeps the activations between the matmuls in
    bfloat16, about 11 % off a LoRA step of SmolLM2-135M on a CPU. The adapters, their
    gradients and the optimizer stay fp32. Full fine-tuning keeps fp32 master weights.
    """
    return torch.bfloat16 if lora and resolve_precision(config.precision, device) == "bf16" else torch.float32


def autocast_for(precision: str, device: torch.device) -> AbstractContextManager:
    """The context a forward pass runs in at ``precision`` (``fp32``, ``bf16`` or ``auto``) on ``device``."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def make_optimizer(model, params: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over ``params``; with ``lora_plus_ratio``, PEFT's LoRA+ parameter groups of ``model``."""
    if config.lora_plus_ratio is None:
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay,
                                 betas=config.adam_betas)

    if not is_lora(model):
        raise ConfigError("lora_plus_ratio needs LoRA adapters: set lora: true, or leave lora_plus_ratio unset")
    from peft.optimizers import create_loraplus_optimizer

    plus = create_loraplus_optimizer(model, torch.optim.AdamW, lr=config.learning_rate,
                                     loraplus_lr_ratio=config.lora_plus_ratio,
                                     loraplus_weight_decay=config.weight_decay, betas=config.adam_betas)
    # Without the empty groups (no adapters on embeddings, say), which checkpoints cannot restore.
    groups = [dict(g) for g in plus.param_groups if g["params"]]
    return torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay,
                             betas=config.adam_betas)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (model init, dropout, sampling)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_order(n_rows: int, seed: int, epoch: int) -> list[int]:
    """The row order of one epoch: a permutation fixed by ``(seed, epoch)``."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n_rows, generator=g).tolist()


def stratified_order(labels: Sequence[str], seed: int, epoch: int) -> list[int]:
    """The row order of one epoch with each label's rows spread evenly through it, fixed by ``(seed, epoch)``.

    Each label's rows are shuffled, the ``j``-th of ``n`` given the key ``(j + u) / n`` (``u`` a random offset
    of that label), and all rows sorted by key: any run of ``B`` consecutive rows then holds each label's
    share of ``B`` to within two rows (the keys of a label are ``1/n`` apart), so every batch has about the
    data's mix rather than a random draw of it.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    keyed: list[tuple[float, int]] = []
    for label in sorted(by_label):
        rows = by_label[label]
        perm = torch.randperm(len(rows), generator=g).tolist()
        offset = float(torch.rand((), generator=g))
        keyed += [((j + offset) / len(rows), rows[k]) for j, k in enumerate(perm)]
    return [i for _, i in sorted(keyed)]


class Trainer:
    """Runs the loop for one model, dataset, collate and loss."""

    def __init__(
        self,
        model,
        rows: Sequence[Any],
        collate: Callable[[list[Any]], dict],
        loss_fn: Callable[[Any, dict], LossOutput],
        config: TrainConfig,
        *,
        world: World | None = None,
        on_save: Callable[[Path], None] | None = None,
        description: str = "train",
    ):
        if not rows:
            raise ValueError("no training rows")
        self.config = config
        self.world = world or init_world()
        self.rows = rows
        self.collate = collate
        self.loss_fn = loss_fn
        self.on_save = on_save
        self.description = description
        self.out_dir = Path(config.out_dir)
        self.model = model.to(self.world.device)
        self.ddp_model = wrap_model(self.model, self.world, config.strategy)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        self.optimizer = make_optimizer(self.model, params, config)
        self.global_batch = config.batch_size * config.grad_accum * self.world.world_size
        self.steps_per_epoch = max(1, len(rows) // self.global_batch)
        self.total_steps = config.max_steps or max(1, math.ceil(config.epochs * self.steps_per_epoch))
        warmup = int(config.warmup_ratio * self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.total_steps, warmup, config.min_lr_ratio)
        )
        self.strata: list[str] | None = None
        """A label per row: each epoch's order spreads every label evenly (:func:`stratified_order`)."""
        self.step = 0
        self.out_of_time = False
        """Whether the last :meth:`run` ended on ``max_minutes`` before its last step."""

    @property
    def finished(self) -> bool:
        """Whether the run is over: its last step taken, or its time budget spent (its model is then saved)."""
        return self.step >= self.total_steps or self.out_of_time

    # -- data ---------------------------------------------------------------------
    def micro_batches(self, step: int) -> list[list[Any]]:
        """This process's micro-batches for optimizer step ``step``."""
        epoch, k = divmod(step, self.steps_per_epoch)
        order = (stratified_order(self.strata, self.config.seed, epoch) if self.strata
                 else epoch_order(len(self.rows), self.config.seed, epoch))
        start = k * self.global_batch
        idx = [order[(start + i) % len(order)] for i in range(self.global_batch)]
        per_rank = self.config.batch_size * self.config.grad_accum
        mine = idx[self.world.rank * per_rank : (self.world.rank + 1) * per_rank]
        bs = self.config.batch_size
        return [[self.rows[i] for i in mine[j : j + bs]] for j in range(0, per_rank, bs)]

    # -- one step -------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        batches = [self.collate(rows) for rows in self.micro_batches(step)]
        metrics = self.update(batches, step)
        self.scheduler.step()
        return metrics

    def update(self, batches: list[dict], step: int) -> dict[str, float]:
        """One optimizer update over collated micro-batches (steps 2-4 above, without the schedule).

        A trainer that takes several updates per step (RL: mini-batches of one rollout)
        calls this once per update and steps the schedule once per step.
        """
        cfg = self.config
        self.ddp_model.train()
        units = self.world.all_sum(sum(b["n_units"] for b in batches))
        if units <= 0:
            raise RuntimeError(f"step {step}: the batch has nothing to train on (no loss units)")
        scale = self.world.world_size / units  # DDP averages over processes; undo it.
        sums: dict[str, float] = {"loss": 0.0}
        autocast = autocast_for(cfg.precision, self.world.device)
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            sync = nullcontext() if last or not hasattr(self.ddp_model, "no_sync") else self.ddp_model.no_sync()
            with sync:
                with autocast:
                    out = self.loss_fn(self.ddp_model, batch)
                (out.loss_sum * scale).backward()
            sums["loss"] += float(out.loss_sum.detach())
            for k, v in out.metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v)
        grad_norm = None
        if cfg.max_grad_norm is not None:
            params = [p for p in self.model.parameters() if p.requires_grad]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        metrics = {k: self.world.all_sum(v) / units for k, v in sums.items()}
        metrics.update(units=units, lr=lr)
        for key in ("n_tokens", "n_trained_tokens"):
            if key in batches[0]:
                metrics[key] = self.world.all_sum(sum(b[key] for b in batches))
        if grad_norm is not None:
            metrics["grad_norm"] = grad_norm
        return metrics

    # -- the loop -------------------------------------------------------------------
    def resume(self) -> int:
        """Restore the newest checkpoint in ``out_dir/checkpoints`` if there is one."""
        ckpt = latest_checkpoint(self.out_dir / "checkpoints")
        if ckpt is None:
            return 0
        state = load_checkpoint(
            ckpt, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler, rank=self.world.rank
        )
        self.step = int(state["step"])
        self.restore_state(state)
        return self.step

    def checkpoint_state(self) -> dict[str, Any]:
        """Trainer state beyond weights, optimizer and schedule that a checkpoint keeps (JSON); a subclass
        with such state (the RL trainer's hacking monitor) overrides this and :meth:`restore_state`."""
        return {}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`checkpoint_state` saved (``state`` is the checkpoint's ``state.json``)."""

    def save(self) -> Path:
        path = save_checkpoint(
            self.out_dir / "checkpoints",
            self.step,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            extra={"total_steps": self.total_steps, **self.checkpoint_state()},
            keep_last=self.config.keep_last,
            rank=self.world.rank,
            barrier=self.world.barrier if self.world.distributed else None,
        )
        if self.on_save and self.world.is_main:
            self.on_save(path)
        return path

    def run(self, *, resume: bool = True, stop_after: int | None = None) -> TrainResult:
        """Train to ``total_steps`` (or until ``stop_after`` steps were taken in this call)."""
        cfg = self.config
        if resume:
            self.resume()
        start = self.step
        metrics_path = self.out_dir / "metrics.jsonl"
        history = []
        if self.world.is_main:
            metrics_path.parent.mkdir(parents=True, exist_ok=True)
            history = keep_steps(metrics_path, self.step)
        writer = _tensorboard(self.out_dir) if (cfg.tensorboard and self.world.is_main) else None
        bar = TrainProgress(self.description, self.total_steps, enabled=cfg.progress and self.world.is_main)
        bar.start(done=self.step)
        t_last = time.perf_counter()
        deadline = None if cfg.max_minutes is None else t_last + 60.0 * cfg.max_minutes
        self.out_of_time = False  # this call's budget alone decides
        try:
            while self.step < self.total_steps:
                if stop_after is not None and self.step - start >= stop_after:
                    break
                metrics = self.train_step(self.step)
                self.step += 1
                now = time.perf_counter()
                metrics["step_time"] = now - t_last
                t_last = now
                if "n_trained_tokens" in metrics:
                    metrics["trained_tokens_per_s"] = metrics["n_trained_tokens"] / metrics["step_time"]
                record = {"step": self.step, "epoch": self.step / self.steps_per_epoch, **metrics}
                if self.world.is_main:
                    history.append(record)
                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        append_json_lines(metrics_path, [record])
                        if writer is not None:
                            for k, v in metrics.items():
                                writer.add_scalar(f"train/{k}", v, self.step)
                bar.update(self.step, metrics)
                saved = self.step % cfg.save_every == 0 or self.step == self.total_steps
                if saved:
                    self.save()
                if deadline is not None and self.world.all_sum(now >= deadline) > 0:  # every process stops together
                    if not saved:
                        self.save()
                    self.out_of_time = self.step < self.total_steps
                    break
        finally:
            bar.stop()
            if writer is not None:
                writer.close()
            if self.world.is_main and history:
                plot_history(history, self.out_dir / "training.png", title=f"{self.description}: {self.out_dir.name}")
        final = history[-1]["loss"] if history else float("nan")
        return TrainResult(steps=self.step, final_loss=final, history=history, out_dir=self.out_dir)


def _tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))
