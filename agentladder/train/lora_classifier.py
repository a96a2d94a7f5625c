"""A LoRA sequence-classification fine-tune: the comparison to the feature classifier on the same rows.

:func:`train_lora_classifier` reads ``{"text", "label"}`` rows as
:func:`~agentladder.train.classifier.train_classifier` does (same label checks, same validation rule),
puts a fresh classification head on a causal LM (transformers' ``AutoModelForSequenceClassification``)
and trains peft LoRA adapters in every linear layer with the head (``SEQ_CLS``), by AdamW on a
class-weighted cross-entropy (each class weighted by ``n / (k * n_class)``, as the feature classifier's
regression is, so the rare P1 counts as much as the common P3), for ``epochs`` passes over at most
``max_rows`` training rows. Each learning rate of ``lrs`` trains one model from the same seed; the one
of best validation macro-F1 (ties: accuracy, then the smaller rate) is saved as a
:class:`~agentladder.models.seqclassifier.LoraClassifier` folder whose manifest lists every rate tried
with its validation figures. The test split is never read here.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from agentladder.errors import ConfigError, OutputExistsError
from agentladder.models.classifier import is_classifier_folder
from agentladder.models.seqclassifier import LoraClassifier, sequence_classifier
from agentladder.tasks.task import Sample
from agentladder.train.classifier import ClassifierResult, figures, labelled_splits

LRS = (5e-4,)
"""Learning rates tried by default (one: each costs a whole training run)."""


def train_lora_classifier(
    data: str,
    out_dir: str,
    *,
    model: str = "smollm2-135m",
    validation: str | None = None,
    validation_share: float = 0.2,
    task: str | None = None,
    labels: Sequence[str] | None = None,
    lrs: Sequence[float] = LRS,
    rank: int = 8,
    epochs: int = 1,
    max_rows: int | None = None,
    max_length: int = 128,
    batch_size: int = 16,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> ClassifierResult:
    """Fine-tune ``model`` with LoRA as a sequence classifier on ``data`` and save it to ``out_dir``
    (see the module docstring). ``ClassifierResult.c`` holds the chosen learning rate."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (overwrite and is_classifier_folder(out)):
        raise OutputExistsError(f"{out_dir} exists and is not empty: choose another --out")
    if not lrs or min(lrs) <= 0:
        raise ConfigError("give at least one learning rate, each above 0")
    if epochs < 1 or rank < 1 or (max_rows is not None and max_rows < 1):
        raise ConfigError("epochs, rank and max_rows must be at least 1")
    train_rows, val_rows, labels_, val_source = labelled_splits(
        data, validation, task=task, labels=labels, validation_share=validation_share, seed=seed)
    if max_rows is not None and len(train_rows) > max_rows:
        train_rows = random.Random(f"lora-classifier:{seed}").sample(train_rows, max_rows)

    start = time.perf_counter()
    tried, best = [], None
    for lr in dict.fromkeys(lrs):
        clf = _fit(model, train_rows, labels_, lr=lr, rank=rank, epochs=epochs, max_length=max_length,
                   batch_size=batch_size, seed=seed, progress=progress)
        scored = figures(clf.predict([r.input for r in val_rows]), [r.target for r in val_rows], labels_)
        tried.append({"lr": lr, **{k: scored[k] for k in ("accuracy", "macro_f1", "recall")}})
        if best is None or (scored["macro_f1"], scored["accuracy"]) > (best[1]["macro_f1"], best[1]["accuracy"]):
            best = (clf, scored, lr)
    clf, chosen, lr = best
    clf.info = {"training": {"method": "lora", "data": str(data), "rows": len(train_rows), "validation": val_source,
                             "validation_rows": len(val_rows), "rank": rank, "epochs": epochs, "lr": lr,
                             "batch_size": batch_size, "seed": seed, "configurations_tried": len(tried),
                             "selection": "validation macro-F1"},
                "tried": tried, "validation": chosen}
    _save_atomic(clf, out, overwrite)
    return ClassifierResult(out, None, lr, tried, chosen, {"training": time.perf_counter() - start})


def _fit(model: str, rows: list[Sample], labels: list[str], *, lr: float, rank: int, epochs: int, max_length: int,
         batch_size: int, seed: int, progress: bool) -> LoraClassifier:
    """One LoRA sequence classifier trained on ``rows`` (class-weighted cross-entropy, AdamW, linear decay)."""
    from peft import LoraConfig, get_peft_model

    net, tokenizer = sequence_classifier(model, len(labels), seed=seed)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear",
                        task_type="SEQ_CLS")
    net = get_peft_model(net, config)
    counts = torch.tensor([sum(r.target == c for r in rows) for c in labels], dtype=torch.float32)
    weights = len(rows) / (len(labels) * counts.clamp(min=1))
    index = {c: i for i, c in enumerate(labels)}
    optimiser = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    steps = epochs * -(-len(rows) // batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: max(0.0, 1 - s / steps))
    rng = random.Random(f"lora-classifier-order:{seed}")
    net.train()
    with _bar(progress, f"LoRA classifier ({model}, lr {lr:g})", steps) as advance:
        for _ in range(epochs):
            order = list(rows)
            rng.shuffle(order)
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                enc = tokenizer([r.input for r in batch], padding=True, truncation=True, max_length=max_length,
                                return_tensors="pt")
                target = torch.tensor([index[r.target] for r in batch])
                logits = net(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
                loss = torch.nn.functional.cross_entropy(logits.float(), target, weight=weights)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 1.0)
                optimiser.step()
                schedule.step()
                optimiser.zero_grad(set_to_none=True)
                advance(float(loss.detach()))
    net.eval()
    return LoraClassifier(model, labels, net, tokenizer, max_length, batch_size=batch_size)


class _bar:
    """A rich bar over training steps showing the last loss (nothing when ``show`` is false)."""

    def __init__(self, show: bool, description: str, total: int):
        self.show, self.description, self.total = show, description, total
        self.progress: Progress | None = None

    def __enter__(self):
        if not self.show:
            return lambda loss: None
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("eta"),
                                 TimeRemainingColumn(), console=Console(file=sys.stderr))
        self.progress.start()
        task = self.progress.add_task(self.description, total=self.total, loss="-")
        return lambda loss: self.progress.update(task, advance=1, loss=f"{loss:.3f}")

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()


def _save_atomic(clf: LoraClassifier, out: Path, overwrite: bool) -> None:
    """Write the classifier to a temporary folder beside ``out``, then rename it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        clf.save(tmp)
        if out.exists():
            if any(out.iterdir()) and not overwrite:
                raise OutputExistsError(f"{out} exists and is not empty: choose another --out")
            shutil.rmtree(out)
        tmp.replace(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["LRS", "train_lora_classifier"]
