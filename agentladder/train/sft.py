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
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from agentladder.data.io import DataError, load_rows, sniff_sft_schema
from agentladder.data.schema import Conversation, TextRow
from agentladder.models.attention import use_packed_attention
from agentladder.models.chat import TokenizedRow, tokenize_row
from agentladder.models.lora import is_lora
from agentladder.train.batching import collator
from agentladder.train.distributed import unwrap
from agentladder.train.loop import LossOutput, TrainConfig, Trainer, TrainResult
from agentladder.train.losses import IGNORE, masked_token_nll
from agentladder.train.run import (
    LoraFields,
    finish_run,
    lineage_base,
    start_run,
)


class SFTConfig(LoraFields, TrainConfig):
    """Supervised fine-tuning: the loop's settings plus model, data and LoRA."""

    learning_rate: float | None = Field(None, gt=0)  # type: ignore[assignment]
    """Peak learning rate [default: 2e-4 with LoRA, 2e-5 full fine-tuning]."""
    model: str = "smollm2-135m"
    """Alias, local folder (a LoRA run folder continues its adapter) or hub id."""
    data: str
    """JSONL of conversations (or prompt/completion rows), or of ``{"text"}`` rows for CPT."""
    max_length: int = Field(1024, ge=8)
    """Longest sequence in tokens; longer conversations are cut, longer texts split into blocks."""
    packing: bool = True
    """Padding-free packing of each micro-batch into one sequence."""

    @model_validator(mode="after")
    def _default_learning_rate(self) -> SFTConfig:
        if self.learning_rate is None:
            self.learning_rate = 2e-4 if self.lora else 2e-5
        return self


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
    run = start_run(SFTConfig, config, kwargs, resume)
    config = run.config
    schema = sniff_sft_schema(config.data)
    rows = prepare_rows(run.tokenizer, load_rows(config.data, schema), config.max_length, source=config.data)
    run.save_config()
    trainer = Trainer(run.model, rows, _collate(run.model, run.tokenizer, config.packing), causal_lm_loss, config,
                      world=run.world, description="sft")
    result = trainer.run(resume=resume)

    def metadata(lora: bool) -> dict[str, Any]:
        return {"method": "cpt" if schema is TextRow else "sft", "base_model": lineage_base(config.model, lora),
                "lora": lora, "steps": trainer.step, "data": str(Path(config.data).resolve()),
                "final_loss": result.final_loss}

    return finish_run(run, trainer, result, metadata)


def _collate(model, tokenizer, packing: bool):
    """The batch builder, with the flags :func:`causal_lm_loss` reads: whether the model can skip the output
    head at untrained positions, and whether packed rows run on the per-row attention kernel."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collate = collator(pad_id, packing)
    flags = {}
    if not _supports_logits_to_keep(model):
        flags["_logits_to_keep"] = False
    if packing and use_packed_attention(model):
        flags["_packed_attention"] = True
    if not flags:
        return collate
    return lambda rows: {**collate(rows), **flags}


def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


__all__ = ["SFTConfig", "sft", "causal_lm_loss", "prepare_rows", "count_parameters"]
