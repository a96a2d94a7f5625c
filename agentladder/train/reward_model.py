"""Reward models from expert feedback, on the shared loop: Bradley-Terry on pairs, regression on grades.

:func:`train_reward_model` puts a fresh scalar head on a causal LM (full fine-tuning, or LoRA
adapters with the head through peft) and trains it on :func:`~agentladder.data.feedback.load_feedback`
rows: pairs with the Bradley-Terry loss (an optional margin: each pair's ``metadata.margin``, else
``margin``), graded answers with a squared error to the grade mapped onto ``[-1, 1]``
(:mod:`agentladder.train.reward_losses`). Each conversation is rendered through the reward model's
own chat template; a text longer than ``max_length`` tokens keeps its last tokens (the answer).

The loop is the one every trainer shares (checkpoints, resume, metrics, progress). When it has taken
its last step, the rewards of the answers of (up to 256) training rows give the normalisation an RL reward
applies, the held-out rows are scored (pairwise accuracy, calibration; for grades, squared error and
Spearman's rho), and the folder is written (:class:`~agentladder.models.rewardmodel.RewardModel`),
its manifest last. The held-out rows are ``validation``, or a seeded ``validation_share`` of the
prompts of ``data`` (split by prompt, so no prompt is on both sides). They choose between
configurations (the caller compares the manifests' figures); a test file is only scored by
``agentladder eval --task preference-accuracy``.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator

from agentladder.data.feedback import FeedbackRow, load_feedback
from agentladder.data.io import atomic_write_text
from agentladder.data.schema import PreferencePair
from agentladder.errors import ConfigError
from agentladder.models.rewardmodel import RewardModel, is_reward_model_folder, reward_network
from agentladder.rewards.reward_model import preference_figures
from agentladder.train.distributed import init_world, unwrap
from agentladder.train.loop import LossOutput, TrainConfig, Trainer, TrainResult, seed_everything
from agentladder.train.reward_losses import bradley_terry_loss, grade_regression_loss, grade_target
from agentladder.train.run import RUN_CONFIG, LoraFields, resolved_spec, run_config


class RewardConfig(LoraFields, TrainConfig):
    """A reward model: the base, the feedback, the losses. ``batch_size`` counts rows (a pair is one)."""

    model: str = "smollm2-135m"
    """Causal LM under the scalar head: alias, local folder (a full run; merge a LoRA run first) or hub id."""
    data: str
    """JSONL of pairs (``prompt``, ``chosen``, ``rejected``) and/or graded answers (``prompt``, ``completion``, ``grade``)."""
    validation: str | None = None
    """Held-out rows of the same kinds [default: ``validation_share`` of the prompts of ``data``]."""
    validation_share: float = Field(0.1, ge=0, lt=1)
    """Share of ``data``'s prompts held out when no ``validation`` file is given (0: none)."""
    margin: float = Field(0.0, ge=0)
    """Bradley-Terry margin for pairs without their own ``metadata.margin``."""
    grade_min: float = 1.0
    """The low end of the grades' scale; a grade outside the scale is an error."""
    grade_max: float = 5.0
    """The high end of the grades' scale."""
    grade_weight: float = Field(1.0, ge=0)
    """Weight of a graded row's squared error against a pair's Bradley-Terry loss."""
    max_length: int = Field(512, ge=8)
    """Tokens kept of each conversation (the last ones)."""
    learning_rate: float | None = Field(None, gt=0)  # type: ignore[assignment]
    """Peak learning rate [default: 1e-4 with LoRA, 1e-5 full fine-tuning]."""
    batch_size: int = Field(8, ge=1)
    """Rows per micro-batch (a pair is one row, two sequences)."""
    normalisation_rows: int = Field(256, ge=1)
    """Training rows (a seeded draw) whose answers' rewards give the normalisation mean and std."""

    @model_validator(mode="after")
    def _check(self) -> RewardConfig:
        if self.learning_rate is None:
            self.learning_rate = 1e-4 if self.lora else 1e-5
        if not self.grade_min < self.grade_max:
            raise ValueError(f"grade_max: must be above grade_min ({self.grade_min:g}), got {self.grade_max:g}")
        return self

    @property
    def scale(self) -> tuple[float, float]:
        return (self.grade_min, self.grade_max)


@dataclass
class EncodedRow:
    """One feedback row as token ids: a pair (``rejected`` set) or a graded answer (``target`` set)."""

    ids: list[int]
    rejected: list[int] | None = None
    margin: float = 0.0
    target: float | None = None


@dataclass
class RewardResult(TrainResult):
    validation: dict[str, Any] | None = None
    """The held-out figures (:func:`held_out_figures`), None while the run is unfinished or without held-out rows."""


def _prompt_key(row: FeedbackRow) -> str:
    return json.dumps([m.model_dump(mode="json", exclude_none=True) for m in row.prompt], sort_keys=True)


def split_rows(rows: list[FeedbackRow], share: float, seed: int) -> tuple[list[FeedbackRow], list[FeedbackRow]]:
    """``(train, held_out)``: a seeded ``share`` of the distinct prompts, with all their rows, held out."""
    keys = sorted({_prompt_key(r) for r in rows})
    n = round(share * len(keys))
    if share > 0 and len(keys) > 1:
        n = min(max(n, 1), len(keys) - 1)
    held = set(random.Random(f"reward-split:{seed}").sample(keys, n)) if share > 0 else set()
    return [r for r in rows if _prompt_key(r) not in held], [r for r in rows if _prompt_key(r) in held]


def encode_rows(rm: RewardModel, rows: list[FeedbackRow], config: RewardConfig) -> list[EncodedRow]:
    def ids(text: str) -> list[int]:
        return rm.tokenizer(text, add_special_tokens=False)["input_ids"][-config.max_length:]

    out = []
    for r in rows:
        if isinstance(r, PreferencePair):
            out.append(EncodedRow(ids(rm.text(r.prompt, r.chosen)), ids(rm.text(r.prompt, r.rejected)),
                                  float(r.metadata.get("margin", config.margin))))
        else:
            out.append(EncodedRow(ids(rm.text(r.prompt, r.completion)),
                                  target=float(grade_target(torch.tensor(r.grade), config.scale))))
    return out


def collate(rows: list[EncodedRow], pad_id: int) -> dict[str, Any]:
    """Every sequence of the micro-batch, right-padded, with which rows are pairs (chosen, rejected) and grades."""
    seqs: list[list[int]] = []
    chosen, rejected, margins, graded, targets = [], [], [], [], []
    for r in rows:
        if r.rejected is not None:
            chosen.append(len(seqs))
            rejected.append(len(seqs) + 1)
            seqs += [r.ids, r.rejected]
            margins.append(r.margin)
        else:
            graded.append(len(seqs))
            seqs.append(r.ids)
            targets.append(r.target)
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # (S, T)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        input_ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "chosen": torch.tensor(chosen, dtype=torch.long),
            "rejected": torch.tensor(rejected, dtype=torch.long), "margin": torch.tensor(margins),
            "graded": torch.tensor(graded, dtype=torch.long), "target": torch.tensor(targets, dtype=torch.float32),
            "n_units": len(rows), "n_tokens": int(mask.sum())}


def make_loss(config: RewardConfig):
    """``loss(model, batch)``: summed Bradley-Terry losses of the pairs plus ``grade_weight`` x squared errors."""

    def loss(model, batch: dict) -> LossOutput:
        device = next(model.parameters()).device
        out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
        reward = out.logits[:, 0].float()  # (S,)
        total = reward.new_zeros(())
        metrics: dict[str, float] = {}
        if len(batch["chosen"]):
            rc, rr = reward[batch["chosen"].to(device)], reward[batch["rejected"].to(device)]
            total = total + bradley_terry_loss(rc, rr, batch["margin"].to(device)).sum()
            metrics["pair_accuracy"] = float((rc > rr).sum())
            metrics["margin"] = float((rc - rr).detach().sum())
        if len(batch["graded"]):
            err = grade_regression_loss(reward[batch["graded"].to(device)], batch["target"].to(device))
            total = total + config.grade_weight * err.sum()
            metrics["grade_sq_error"] = float(err.detach().sum())
        return LossOutput(total, metrics)

    return loss


def held_out_figures(rm: RewardModel, rows: list[FeedbackRow], scale: tuple[float, float]) -> dict[str, Any]:
    """Pairwise accuracy and calibration on the pairs; squared error and Spearman's rho on the grades."""
    from scipy.stats import spearmanr

    pairs = [r for r in rows if isinstance(r, PreferencePair)]
    graded = [r for r in rows if not isinstance(r, PreferencePair)]
    out: dict[str, Any] = {}
    if pairs:
        c = rm.score([p.prompt for p in pairs], [p.chosen for p in pairs])
        r = rm.score([p.prompt for p in pairs], [p.rejected for p in pairs])
        out["pairs"] = preference_figures(c, r)
    if graded:
        s = rm.score([g.prompt for g in graded], [g.completion for g in graded])
        grades = np.array([g.grade for g in graded])
        target = grade_target(torch.tensor(grades), scale).numpy()
        rho = spearmanr(s, grades).statistic if len(graded) > 2 and len(set(grades)) > 1 else None
        out["grades"] = {"rows": len(graded), "sq_error": float(((s - target) ** 2).mean()),
                         "spearman": None if rho is None or np.isnan(rho) else float(rho)}
    return out


def train_reward_model(config: RewardConfig | None = None, /, *, resume: bool = False, **kwargs: Any) -> RewardResult:
    """Train a reward model (see the module docstring); ``train_reward_model(model=..., data=..., out_dir=...)``
    works as well as a config. With ``resume=True`` an interrupted run in ``out_dir`` continues."""
    config = run_config(RewardConfig, config, kwargs, resume)
    if not resume and is_reward_model_folder(config.out_dir):
        raise ConfigError(f"{config.out_dir} already holds a reward model: choose another output folder")
    world = init_world()
    seed_everything(config.seed)
    rows = load_feedback(config.data, scale=config.scale)
    if config.validation:
        train_rows, held = rows, load_feedback(config.validation, scale=config.scale)
    else:
        train_rows, held = split_rows(rows, config.validation_share, config.seed)
    net, tokenizer = reward_network(config.model, seed=config.seed)
    if config.lora:
        from peft import LoraConfig, get_peft_model

        net = get_peft_model(net, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                             lora_dropout=config.lora_dropout, task_type="SEQ_CLS",
                                             target_modules=config.lora_target_modules))
    else:
        net.requires_grad_(True)
    rm = RewardModel(net, tokenizer, resolved_spec(config.model), config.max_length, lora=config.lora)
    encoded = encode_rows(rm, train_rows, config)
    if world.is_main:  # the run folder exists from here on, so bad data leaves none behind
        Path(config.out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(config.out_dir) / RUN_CONFIG, config.model_dump_json(indent=2))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    trainer = Trainer(net, encoded, lambda b: collate(b, pad), make_loss(config), config, world=world,
                      description="reward model")
    result = trainer.run(resume=resume)
    validation = None
    if trainer.finished and world.is_main:
        rm.net = unwrap(trainer.model)
        sample = random.Random(f"reward-norm:{config.seed}").sample(train_rows, min(config.normalisation_rows, len(train_rows)))
        answers = [r.chosen if isinstance(r, PreferencePair) else r.completion for r in sample]
        answers += [r.rejected for r in sample if isinstance(r, PreferencePair)]
        prompts = [r.prompt for r in sample] + [r.prompt for r in sample if isinstance(r, PreferencePair)]
        train_scores = rm.score(prompts, answers)
        rm.mean, rm.std = float(train_scores.mean()), float(train_scores.std()) or 1.0
        validation = held_out_figures(rm, held, config.scale) if held else None
        rm.info = {"training": {"data": str(config.data), "rows": len(train_rows),
                                "validation": config.validation or f"{config.validation_share:g} of the prompts",
                                "validation_rows": len(held), "steps": trainer.step, "margin": config.margin,
                                "learning_rate": config.learning_rate, "seed": config.seed,
                                "data_sha256": _sha(config.data)},
                   "validation": validation}
        rm.save(config.out_dir)
    world.barrier()
    return RewardResult(result.steps, result.final_loss, result.history, result.out_dir, validation)


def _sha(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


__all__ = ["RewardConfig", "RewardResult", "collate", "held_out_figures", "make_loss", "split_rows",
           "train_reward_model"]
