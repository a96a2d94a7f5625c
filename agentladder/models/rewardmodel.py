"""A reward model: a causal LM with a scalar head, scoring a conversation's last answer; saved as one folder.

The network is transformers' ``AutoModelForSequenceClassification`` with one output: a fresh linear
head (``score``) on the hidden state of the last real token, on any causal LM (an alias, a folder, a
hub id, or ``tiny``). Trained in full, the folder holds the whole network and its tokenizer under
``model/``; trained with LoRA, it holds peft's adapter (the head included) under ``adapter/`` and names
the base model. ``reward_model.json`` (format ``agentladder-reward-model``) is written last: the
base, the token limit, the mean and standard deviation of the rewards over the training answers (the
normalisation an RL reward applies), the validation figures, and how it was trained.

A conversation is scored as the text its own chat template renders (prompt and answer), tokenised with
**the reward model's own tokenizer**: a policy with another tokenizer is scored the same way, from its
answer's text. Training is in :mod:`agentladder.train.reward_model`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentladder.data.io import atomic_write_text
from agentladder.data.schema import Message
from agentladder.errors import ConfigError, MissingFileError
from agentladder.models.chat import render
from agentladder.models.quiet import quiet_transformers
from agentladder.models.seqclassifier import sequence_classifier

FORMAT = "agentladder-reward-model"
VERSION = 1
MANIFEST = "reward_model.json"
FULL, ADAPTER = "model", "adapter"


def is_reward_model_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a finished reward model (its manifest is written last)."""
    return (Path(path).expanduser() / MANIFEST).is_file()


def reward_network(model: str, *, seed: int = 0):
    """``(net, tokenizer)``: ``model`` with a fresh, seeded scalar head on its last real token."""
    return sequence_classifier(model, 1, seed=seed)


@dataclass
class RewardModel:
    """A scalar-headed model and its tokenizer; :meth:`score` gives one reward per (prompt, answer)."""

    net: Any
    tokenizer: Any
    base_model: str
    max_length: int = 1024
    mean: float = 0.0
    """Mean reward over the training answers (subtracted when normalising)."""
    std: float = 1.0
    """Their standard deviation (divided by when normalising)."""
    lora: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8

    def text(self, prompt: Sequence[Message], answer: Sequence[Message]) -> str:
        """The conversation as the reward model reads it: through its own chat template."""
        return render(self.tokenizer, [*prompt, *answer])

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``(N,)`` raw rewards of rendered conversations, in batches of similar lengths, without gradient."""
        out = np.zeros(len(texts), np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        was = self.net.training
        self.net.eval()
        try:
            for start in range(0, len(order), self.batch_size):
                ids = order[start:start + self.batch_size]
                enc = encode(self.tokenizer, [texts[i] for i in ids], self.max_length)
                with torch.no_grad():
                    logits = self.net(**enc).logits  # (b, 1)
                out[ids] = logits[:, 0].float().cpu().numpy()
        finally:
            self.net.train(was)
        return out

    def score(self, prompts: Sequence[Sequence[Message]], answers: Sequence[Sequence[Message]], *,
              normalize: bool = False) -> np.ndarray:
        """``(N,)`` rewards of each prompt's answer; ``normalize`` maps them by the training mean and std."""
        raw = self.score_texts([self.text(p, a) for p, a in zip(prompts, answers, strict=True)])
        return (raw - self.mean) / self.std if normalize else raw

    def manifest(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "base_model": self.base_model, "lora": self.lora,
                "weights": ADAPTER if self.lora else FULL, "max_length": self.max_length,
                "normalisation": {"mean": self.mean, "std": self.std}, **self.info}

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the weights (and tokenizer), then the manifest last, into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        where = folder / (ADAPTER if self.lora else FULL)
        with quiet_transformers():
            self.net.save_pretrained(str(where))
            self.tokenizer.save_pretrained(str(where))
        atomic_write_text(folder / MANIFEST, json.dumps(self.manifest(), indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, *, batch_size: int = 8) -> RewardModel:
        """Read a folder written by :meth:`save`."""
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = Path(folder).expanduser()
        path = folder / MANIFEST
        if not path.is_file():
            raise MissingFileError(f"{folder}: no {MANIFEST} (not a finished reward model)")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: invalid JSON ({err.msg})") from None
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise ConfigError(f"{path}: not an {FORMAT} manifest of version {VERSION}")
        where = folder / manifest["weights"]
        if not where.is_dir():
            raise MissingFileError(f"{folder}: the weights folder {where.name}/ is missing")
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(where))
            if manifest["lora"]:
                net, _ = reward_network(manifest["base_model"])
                net = PeftModel.from_pretrained(net, str(where))
            else:
                net = AutoModelForSequenceClassification.from_pretrained(str(where), dtype=torch.float32)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"
        net.eval()
        norm = manifest.get("normalisation") or {}
        known = ("format", "version", "base_model", "lora", "weights", "max_length", "normalisation")
        return cls(net, tokenizer, manifest["base_model"], int(manifest["max_length"]), float(norm.get("mean", 0.0)),
                   float(norm.get("std", 1.0)) or 1.0, bool(manifest["lora"]),
                   {k: v for k, v in manifest.items() if k not in known}, batch_size)


def encode(tokenizer, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask``; a text past ``max_length`` keeps its *last* tokens,
    where the answer (what is scored) is."""
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"][-max_length:] for t in texts]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask}


__all__ = ["FORMAT", "MANIFEST", "RewardModel", "encode", "is_reward_model_folder", "reward_network"]
