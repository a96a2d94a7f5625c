"""Supervised fine-tuning (and continued pre-training) on the shared loop.

Conversation rows train on their assistant turns only; ``{"text": ...}`` rows
(continued pre-training) train on every token and are cut into
``max_length`` blocks. Full fine-tuning or LoRA; padding-free packing by
default.

The output folder holds the model (the adapter for LoRA, the full weights
otherwise) with its tokenizer and ``agentladder.json`` (base model, method,
steps), so ``load_model(out_dir)`` and ``agentladder eval --model out_dir``
load it directly; ``checkpoints/`` and ``metrics.jsonl`` sit beside it.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from pydantic import Field

from agentladder.data.io import DataError, atomic_write_text, load_rows, sniff_sft_schema
from agentladder.data.schema import Conversation, TextRow
from agentladder.models.attention import use_packed_attention
from agentladder.models.chat import TokenizedRow, tokenize_row
from agentladder.models.loading import RUN_META, load_model
from agentladder.models.lora import LoraSettings, attach_lora, is_lora
from agentladder.train._common import RUN_CONFIG, _base_spec, _full_model_state, _save_final
from agentladder.train.batching import collator
from agentladder.train.distributed import init_world, unwrap
from agentladder.train.loop import (
    LossOutput,
    TrainConfig,
    Trainer,
    TrainResult,
    base_dtype,
    seed_everything,
)
from agentladder.train.losses import IGNORE, masked_token_nll


class SFTConfig(TrainConfig):
    """Supervised fine-tuning: the loop's settings plus model, data and LoRA."""

    model: str = "smollm2-135m"
    """Alias, local folder (a LoRA run folder continues its adapter) or hub id."""
    data: str
    """JSONL of conversations (or prompt/completion rows), or of ``{"text"}`` rows for CPT."""
    max_length: int = Field(1024, ge=8)
    """Longest sequence in tokens; longer conversations are cut, longer texts split into blocks."""
    packing: bool = True
    """Padding-free packing of each micro-batch into one sequence."""
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str = "all-linear"


def prepare_rows(tokenizer, rows: list[Conversation | TextRow], max_length: int, source: str = "data") -> list[TokenizedRow]:
    """Tokenise rows for training: cut conversations, split texts, drop rows with nothing to train."""
    out: list[TokenizedRow] = []
    for row in rows:
        tok = tokenize_row(tokenizer, row)
        if isinstance(row, TextRow):
            for s in range(0, len(tok), max_length):
                block = TokenizedRow(tok.input_ids[s : s + max_length], tok.mask[s : s + max_length])
                if len(block) > 1:
                    out.append(block)
            continue
        if len(tok) > max_length:
            tok = TokenizedRow(tok.input_ids[:max_length], tok.mask[:max_length])
        if sum(tok.mask[1:]) == 0:
            continue
        out.append(tok)
    if not out:
        raise DataError(source, None, None, f"no row has a trainable assistant token within max_length={max_length}")
    return out


def _supports_logits_to_keep(model) -> bool:
    base = unwrap(model)
    base = base.get_base_model() if is_lora(base) else base
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def causal_lm_loss(model, batch: dict) -> LossOutput:
    """Summed next-token loss over the trained tokens of a padded or packed batch.

    The output head runs only at positions whose next token is trained
    (``logits_to_keep``): with assistant-only loss most positions are prompt,
    and the head is a large share of a small model's compute.
    """
    labels = batch["labels"]  # (B, T)
    targets = labels[:, 1:]  # (B, T-1): position t predicts token t+1
    device = next(unwrap(model).parameters()).device
    inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
    if "cu_seq_lens" in batch and batch.get("_packed_attention"):
        # Row boundaries for the per-row attention kernel (see agentladder.models.attention).
        cu = batch["cu_seq_lens"].to(device)
        inputs.update(cu_seq_lens_q=cu, cu_seq_lens_k=cu)
    if batch.get("_logits_to_keep", True):
        keep = (targets != IGNORE).any(0).nonzero().squeeze(-1)  # (K,)
        logits = model(**inputs, logits_to_keep=keep.to(device), use_cache=False).logits  # (B, K, V)
        loss_sum, _ = masked_token_nll(logits, targets[:, keep].to(device))
    else:
        logits = model(**inputs, use_cache=False).logits[:, :-1]  # (B, T-1, V)
        loss_sum, _ = masked_token_nll(logits, targets.to(device))
    return LossOutput(loss_sum=loss_sum)


def sft(config: SFTConfig | None = None, /, *, resume: bool = False, **kwargs: Any) -> TrainResult:
    """Fine-tune ``config.model`` on ``config.data``; see :class:`SFTConfig` for the settings.

    ``sft(data="rows.jsonl", out_dir="runs/sft1", lora=True)`` works as well as
    passing a config. With ``resume=True`` an interrupted run in ``out_dir``
    continues from its newest checkpoint with the settings it was started with.
    """
    out_dir = Path(config.out_dir if config else kwargs["out_dir"])
    saved = out_dir / RUN_CONFIG
    if resume:
        if not saved.exists():
            raise FileNotFoundError(f"{out_dir} holds no run to resume (no {RUN_CONFIG})")
        config = SFTConfig.model_validate_json(saved.read_text()).model_copy(
            update={k: v for k, v in kwargs.items() if k in ("progress", "tensorboard")}
        )
    else:
        config = config or SFTConfig(**kwargs)
        if (out_dir / "checkpoints").exists() and any((out_dir / "checkpoints").iterdir()):
            raise FileExistsError(f"{out_dir} already holds a run; resume it, or choose another output folder")
    world = init_world()
    schema = sniff_sft_schema(config.data)
    rows = load_rows(config.data, schema)
    seed_everything(config.seed)  # the adapter's initial weights come from the RNG
    model, tokenizer = load_model(config.model, trainable_adapter=True,
                                  dtype=base_dtype(config, config.lora, world.device))
    if config.lora and not is_lora(model):
        settings = LoraSettings(config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_target_modules)
        model = attach_lora(model, settings)
    tokenized = prepare_rows(tokenizer, rows, config.max_length, source=config.data)
    if world.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved, config.model_dump_json(indent=2))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collate = collator(pad_id, config.packing)
    flags = {}
    if not _supports_logits_to_keep(model):
        flags["_logits_to_keep"] = False
    if config.packing and use_packed_attention(model):
        flags["_packed_attention"] = True
    if flags:
        inner = collate
        collate = lambda r: {**inner(r), **flags}  # noqa: E731
    trainer = Trainer(model, tokenized, collate, causal_lm_loss, config, world=world, description="sft")
    result = trainer.run(resume=resume)
    finished = trainer.step >= trainer.total_steps
    full_state = _full_model_state(model, world) if finished else None
    if world.is_main and finished:
        meta = {
            "method": "cpt" if schema is TextRow else "sft",
            "base_model": _base_spec(config.model),
            "lora": is_lora(model),
            "steps": trainer.step,
            "data": str(Path(config.data).resolve()),
            "final_loss": result.final_loss,
        }
        if is_lora(model) and (Path(config.model) / RUN_META).exists():
            meta["base_model"] = json.loads((Path(config.model) / RUN_META).read_text())["base_model"]
        _save_final(unwrap(model), tokenizer, out_dir, meta, full_state)
    world.barrier()
    return result


def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


__all__ = ["SFTConfig", "sft", "causal_lm_loss", "prepare_rows", "count_parameters"]
