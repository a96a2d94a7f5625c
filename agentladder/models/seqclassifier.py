"""A LoRA sequence classifier: a causal LM with a classification head, its adapters fine-tuned, saved as one folder.

Where a :class:`~agentladder.models.classifier.FeatureClassifier` keeps the model frozen and fits a
head on its features, a :class:`LoraClassifier` trains low-rank adapters in every linear layer and a
fresh linear head on the last real token's hidden state (transformers'
``AutoModelForSequenceClassification`` with peft's ``SEQ_CLS`` adapters). The folder holds
``classifier.json`` (format ``agentladder-lora-classifier``: base model, labels, token limit, how it
was trained and chosen) and ``adapter/`` (peft's adapter weights, the head included). The base model
is named, not copied. It loads wherever a classifier folder is named (:func:`load_classifier`), so
``agentladder eval --model runs/x`` scores it beside the other models.

Training is in :mod:`agentladder.train.lora_classifier`.
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

from agentladder.errors import ConfigError, MissingFileError
from agentladder.models.classifier import FORMAT as FEATURE_FORMAT
from agentladder.models.classifier import MANIFEST, FeatureClassifier
from agentladder.models.features import ProgressFn
from agentladder.models.loading import TINY_ALIAS, load_tokenizer, resolve
from agentladder.models.quiet import quiet_transformers
from agentladder.models.tiny import tiny_model

LORA_FORMAT = "agentladder-lora-classifier"
VERSION = 1
ADAPTER = "adapter"


def sequence_classifier(model: str, num_labels: int, *, seed: int = 0):
    """``(model, tokenizer)``: the causal LM ``model`` (an alias, a folder, a hub id, or ``tiny``) with a
    fresh, seeded classification head of ``num_labels`` outputs on its last real token."""
    from transformers import AutoModelForSequenceClassification, LlamaForSequenceClassification

    tokenizer = load_tokenizer(model)
    tokenizer.padding_side = "right"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model == TINY_ALIAS:
            config = tiny_model(tokenizer=tokenizer).config
            config.num_labels = num_labels
            net = LlamaForSequenceClassification(config)
        else:
            where = resolve(model)
            if (Path(where) / "adapter_config.json").exists():
                raise ConfigError(f"{model}: a LoRA run folder; merge it (or name its base) for a sequence classifier")
            with quiet_transformers():
                net = AutoModelForSequenceClassification.from_pretrained(where, num_labels=num_labels,
                                                                         dtype=torch.float32)
    net.config.pad_token_id = tokenizer.pad_token_id
    return net, tokenizer


@dataclass
class LoraClassifier:
    """A sequence-classification model with LoRA adapters, answering one of ``labels``."""

    base_model: str
    labels: list[str]
    net: Any
    tokenizer: Any
    max_length: int = 128
    info: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16

    def prepare(self) -> None:
        """Nothing to load: the model is in memory."""

    def predict_proba(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        """``(N, K)`` softmax probabilities, columns in the order of :attr:`labels`."""
        return class_probabilities(self.net, self.tokenizer, texts, self.max_length, self.batch_size, progress)

    def decide(self, proba: np.ndarray) -> list[str]:
        """The label of largest probability (the training loss weighted the classes evenly)."""
        return [self.labels[i] for i in proba.argmax(axis=1)]

    def predict(self, texts: Sequence[str], progress: ProgressFn | None = None) -> list[str]:
        return self.decide(self.predict_proba(texts, progress))

    def manifest(self) -> dict[str, Any]:
        return {"format": LORA_FORMAT, "version": VERSION, "base_model": self.base_model, "labels": self.labels,
                "max_length": self.max_length, "adapter": ADAPTER, **self.info}

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the adapter (head included) and the manifest into ``folder`` (the trainer makes it atomic)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.net.save_pretrained(str(folder / ADAPTER))
        (folder / MANIFEST).write_text(json.dumps(self.manifest(), indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, *, batch_size: int = 16) -> LoraClassifier:
        """Read a folder written by :meth:`save`: the base model with a head, the adapter attached."""
        from peft import PeftModel

        folder = Path(folder).expanduser()
        manifest = _read_manifest(folder)
        if manifest.get("format") != LORA_FORMAT or manifest.get("version") != VERSION:
            raise ConfigError(f"{folder / MANIFEST}: not an {LORA_FORMAT} manifest of version {VERSION}")
        adapter = folder / manifest.get("adapter", ADAPTER)
        if not (adapter / "adapter_config.json").is_file():
            raise MissingFileError(f"{folder}: the adapter {adapter.name}/ is missing")
        labels = list(manifest["labels"])
        net, tokenizer = sequence_classifier(manifest["base_model"], len(labels))
        net = PeftModel.from_pretrained(net, str(adapter)).eval()
        known = ("format", "version", "base_model", "labels", "max_length", "adapter")
        info = {k: v for k, v in manifest.items() if k not in known}
        return cls(manifest["base_model"], labels, net, tokenizer, int(manifest["max_length"]), info, batch_size)

    def close(self) -> None:
        self.net = None


def class_probabilities(net, tokenizer, texts: Sequence[str], max_length: int, batch_size: int,
                        progress: ProgressFn | None = None) -> np.ndarray:
    """``(N, K)`` softmax probabilities of a sequence-classification model, in batches of similar lengths."""
    num_labels = int(net.config.num_labels)
    out = np.zeros((len(texts), num_labels), np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    was_training = net.training
    net.eval()
    for start in range(0, len(order), batch_size):
        ids = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in ids], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        with torch.no_grad():
            logits = net(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        out[ids] = torch.softmax(logits.float(), dim=-1).numpy()
        if progress is not None:
            progress(len(ids))
    net.train(was_training)
    return out


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise MissingFileError(f"{folder}: no {MANIFEST} (not a classifier folder)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: invalid JSON ({err.msg})") from None


def load_classifier(folder: str | os.PathLike, *, batch_size: int = 16) -> FeatureClassifier | LoraClassifier:
    """Whichever classifier ``folder`` holds: a feature classifier or a LoRA sequence classifier."""
    manifest = _read_manifest(Path(folder).expanduser())
    if manifest.get("format") == LORA_FORMAT:
        return LoraClassifier.load(folder, batch_size=batch_size)
    if manifest.get("format") == FEATURE_FORMAT:
        return FeatureClassifier.load(folder, batch_size=batch_size)
    raise ConfigError(f"{Path(folder) / MANIFEST}: format {manifest.get('format')!r} is not "
                      f"{FEATURE_FORMAT!r} or {LORA_FORMAT!r}")


__all__ = ["ADAPTER", "LORA_FORMAT", "LoraClassifier", "class_probabilities", "load_classifier",
           "sequence_classifier"]
