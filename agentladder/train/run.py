"""One start and one finish of a training run, shared by the SFT, preference and RL trainers.

Every trainer function reads the same way::

    run = start_run(SFTConfig, config, kwargs, resume)   # settings (or a resumed run's), seed, model, LoRA
    rows = ...                                           # its data, tokenised
    run.save_config()                                    # the run folder exists from here on
    trainer = Trainer(run.model, rows, collate, loss_fn, run.config, world=run.world)
    result = trainer.run(resume=run.resume)
    return finish_run(run, trainer, result, metadata)    # gather FSDP shards, save the model, barrier

A run folder holds ``train_config.json`` (the settings, so ``resume=True`` needs only the
folder), ``checkpoints/``, ``metrics.jsonl`` and, once the last step is done, the model
with ``agentladder.json`` (its method and lineage), written last so that its presence
means the model is complete.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from agentladder.data.io import atomic_write_text
from agentladder.errors import MissingFileError, OutputExistsError
from agentladder.models.loading import RUN_META, load_model
from agentladder.models.lora import LoraSettings, attach_lora, is_lora
from agentladder.models.quiet import quiet_transformers
from agentladder.train.distributed import World, init_world, unwrap
from agentladder.train.loop import TrainConfig, Trainer, TrainResult, base_dtype, seed_everything

RUN_CONFIG = "train_config.json"
"""The settings a run was started with, kept in its folder so it can resume."""

C = TypeVar("C", bound=TrainConfig)

# -- the LoRA fields every trainer's config has (declared once) -----------------------------------
class LoraFields(BaseModel):
    """The LoRA settings of a trainer's config: mixed into SFT, preference and RL configs."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    lora: bool = False
    """Train LoRA adapters on the frozen model instead of every weight."""
    lora_r: int = 16
    """LoRA rank r of each low-rank update."""
    lora_alpha: int = 32
    """LoRA scale: each update is multiplied by lora_alpha / lora_r."""
    lora_dropout: float = 0.0
    """Dropout on the input of each LoRA adapter."""
    lora_target_modules: list[str] | str = "all-linear"
    """Modules that get adapters: ``all-linear`` (every projection but the output head) or their names."""


def resolved_spec(spec: str) -> str:
    """A model spec as a run records it: the absolute path when it names a file or folder, else as given."""
    path = Path(spec)
    return str(path.resolve()) if path.exists() else spec


def lineage_base(spec: str, lora: bool) -> str:
    """What a run's output stands on: the model spec, or for an adapter continued from a LoRA run, that run's base.

    (A fresh adapter on a fully fine-tuned run folder stands on that folder, not on the folder's own base.)
    """
    meta = Path(spec) / RUN_META
    if lora and meta.exists():
        started = json.loads(meta.read_text())
        if started.get("lora") and started.get("base_model"):
            return started["base_model"]
    return resolved_spec(spec)


def run_config(cls: type[C], config: C | None, kwargs: dict[str, Any], resume: bool) -> C:
    """The settings of a new run (``config`` or ``cls(**kwargs)``), or those saved by the run being resumed.

    A resumed run may change only how it reports (``progress``, ``tensorboard``).
    """
    out_dir = Path(config.out_dir if config else kwargs["out_dir"])
    saved = out_dir / RUN_CONFIG
    if resume:
        if not saved.exists():
            raise MissingFileError(f"{out_dir} holds no run to resume (no {RUN_CONFIG})")
        return cls.model_validate_json(saved.read_text()).model_copy(
            update={k: v for k, v in kwargs.items() if k in ("progress", "tensorboard")}
        )
    if (out_dir / "checkpoints").exists() and any((out_dir / "checkpoints").iterdir()):
        raise OutputExistsError(f"{out_dir} already holds a run; resume it, or choose another output folder")
    return config or cls(**kwargs)


@dataclass
class Run(Generic[C]):
    """A started run: its settings, processes, and the model it trains (LoRA attached when asked)."""

    config: C
    world: World
    model: Any
    """The model to train: a ``PeftModel`` for LoRA runs (and continued adapters), else the plain model."""
    tokenizer: Any
    resume: bool
    from_adapter: bool
    """The starting model was a LoRA run folder (its adapter continues, or was merged in; see :func:`start_run`)."""

    @property
    def out_dir(self) -> Path:
        return Path(self.config.out_dir)

    def save_config(self) -> None:
        """Create the run folder and write the settings into it (main process). Call it once the data is ready,
        so that bad data leaves no folder behind."""
        if self.world.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out_dir / RUN_CONFIG, self.config.model_dump_json(indent=2))


def start_run(cls: type[C], config: C | None, kwargs: dict[str, Any], resume: bool, *,
              adapter: Literal["continue", "merge"] = "continue") -> Run[C]:
    """Settle the settings (:func:`run_config`), join the processes, seed, load the model and attach LoRA.

    A LoRA run folder as the starting model either keeps its adapter and trains it further
    (``adapter="continue"``: SFT and preference; the frozen base is held in bfloat16 when a LoRA run
    trains at ``bf16``, see :func:`~agentladder.train.loop.base_dtype`), or is merged into plain weights
    first (``adapter="merge"``: RL, whose reference policy must be the adapted model itself).
    Seeding comes before loading, as fresh adapters take their initial weights from the RNG.
    """
    config = run_config(cls, config, kwargs, resume)
    world = init_world()
    seed_everything(config.seed)
    settings = LoraSettings(config.lora_r, config.lora_alpha, config.lora_dropout,  # type: ignore[attr-defined]
                            config.lora_target_modules)  # type: ignore[attr-defined]
    lora: bool = config.lora  # type: ignore[attr-defined]
    if adapter == "continue":
        model, tokenizer = load_model(config.model, trainable_adapter=True,  # type: ignore[attr-defined]
                                      dtype=base_dtype(config, lora, world.device))
        from_adapter = is_lora(model)
        if lora and not from_adapter:
            model = attach_lora(model, settings)
    else:
        model, tokenizer = load_model(config.model)  # type: ignore[attr-defined]
        from_adapter = is_lora(model)
        if from_adapter:
            model = model.merge_and_unload()
        if lora:
            model = attach_lora(model, settings)
        else:
            model.requires_grad_(True)
    return Run(config, world, model, tokenizer, resume, from_adapter)


def finish_run(run: Run, trainer: Trainer, result: TrainResult, metadata: Callable[[bool], dict[str, Any]], *,
               prepare: Callable[[Any], Any] | None = None, restore_attention: bool = False) -> TrainResult:
    """Save the trained model once the run has taken its last step (or ended on its time budget,
    ``max_minutes``), then wait for every process.

    ``prepare`` turns the trained model into the one to save (RL drops its value head);
    under FSDP every process gathers the shards, and the main process writes the model,
    its tokenizer and ``metadata(lora)`` as ``agentladder.json`` (``lora``: whether the
    saved model is an adapter). ``restore_attention`` puts back ``sdpa`` where training
    ran on one of agentladder's own attention kernels, so the saved model loads anywhere.
    """
    if trainer.finished:
        model = unwrap(run.model)
        if prepare is not None:
            model = prepare(model)
        full_state = _full_model_state(model, run.world)
        if run.world.is_main:
            lora = is_lora(model)
            if restore_attention:
                (model.get_base_model() if lora else model).set_attn_implementation("sdpa")
            _save_final(model, run.tokenizer, run.out_dir, metadata(lora), full_state)
    run.world.barrier()
    return result


def _full_model_state(model, world: World) -> dict | None:
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


__all__ = ["RUN_CONFIG", "Run", "finish_run", "lineage_base", "resolved_spec", "run_config", "start_run"]
