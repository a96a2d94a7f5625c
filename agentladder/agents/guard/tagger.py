"""A small token classifier for names and addresses, fine-tuned from the packaged MiniLM encoder.

transformers' ``AutoModelForTokenClassification`` on all-MiniLM-L6-v2 (6 layers, 22 M
parameters) with a fresh linear head over BIO tags (``O``, ``B-PERSON``, ``I-PERSON``,
``B-ADDRESS``, ``I-ADDRESS``). Labels come from the character spans of the generator's
training rows through the fast tokenizer's offsets; word pieces after the first of a word
take the word's tag. Training is a plain AdamW loop (linear decay, no warm-up), a few
minutes on a CPU; the result is cached under ``$AGENTLADDER_HOME/guard`` and never committed.

At inference a text is read in windows of ``WINDOW`` characters; consecutive tokens tagged
with the same type form one span (an ``I-`` tag after ``O`` starts one), scored by the mean
probability of its tags.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentladder.agents.guard.data import make_guard_rows
from agentladder.agents.guard.embed import guard_home, minilm_folder
from agentladder.agents.guard.recognizers import Hit
from agentladder.agents.guard.text import windows

LABELS = ("O", "B-PERSON", "I-PERSON", "B-ADDRESS", "I-ADDRESS")
TYPES = ("PERSON", "ADDRESS")
TAGGER_VERSION = 1
WINDOW = 1000


def token_labels(offsets: list[tuple[int, int]], entities: list[dict[str, Any]], word_ids: list[int | None]
                 ) -> list[int]:
    """The BIO label id of each token (``-100`` for special tokens) from character spans."""
    labels = []
    prev_entity = None
    for (s, e), word in zip(offsets, word_ids, strict=True):
        if word is None or s == e:
            labels.append(-100)
            continue
        entity = next((x for x in entities if x["type"] in TYPES and x["start"] <= s < x["end"]), None)
        if entity is None:
            labels.append(0)
        else:
            inside = prev_entity is entity
            labels.append(LABELS.index(("I-" if inside else "B-") + entity["type"]))
        prev_entity = entity
    return labels


def train_tagger(out: str | os.PathLike, *, n_train: int = 3000, epochs: int = 2, lr: float = 5e-5,
                 batch_size: int = 16, max_length: int = 192, seed: int = 0,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Fine-tune the tagger on ``n_train`` generated ``guard-pii`` training rows; saved atomically to ``out``."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    say = progress or (lambda _: None)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    rows = make_guard_rows("guard-pii", "train", n_train, seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_folder()))
    model = AutoModelForTokenClassification.from_pretrained(
        str(minilm_folder()), num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)})
    examples = []
    for r in rows:
        enc = tokenizer(r["text"], truncation=True, max_length=max_length, return_offsets_mapping=True)
        examples.append((enc["input_ids"], token_labels(enc["offset_mapping"], r["entities"], enc.word_ids())))
    steps = epochs * ((len(examples) + batch_size - 1) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / steps))
    model.train()
    step = 0
    for epoch in range(epochs):
        rng.shuffle(examples)
        for i in range(0, len(examples), batch_size):
            batch = examples[i:i + batch_size]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.tensor([x + [tokenizer.pad_token_id] * (width - len(x)) for x, _ in batch])  # (B, T)
            labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])                 # (B, T)
            mask = (torch.arange(width)[None, :] < torch.tensor([len(x) for x, _ in batch])[:, None]).long()
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 50 == 0 or step == steps:
                say(f"tagger epoch {epoch + 1}/{epochs} step {step}/{steps} loss {loss.item():.4f}")
    out = Path(out)
    tmp = Path(tempfile.mkdtemp(dir=out.parent if out.parent.exists() else None, prefix=".tagger-"))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def tagger_path(n_train: int = 3000, seed: int = 0) -> Path:
    return guard_home() / f"tagger-v{TAGGER_VERSION}-n{n_train}-s{seed}"


class MiniLMTagger:
    """PERSON and ADDRESS spans from the fine-tuned MiniLM token classifier."""

    name = "minilm"
    types = TYPES

    def __init__(self, folder: str | os.PathLike | None = None, *, train: bool = True,
                 progress: Callable[[str], None] | None = None):
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        folder = Path(folder) if folder is not None else tagger_path()
        if not (folder / "config.json").exists():
            if not train:
                raise FileNotFoundError(f"no trained tagger at {folder}; run agentladder guard train")
            folder.parent.mkdir(parents=True, exist_ok=True)
            train_tagger(folder, progress=progress)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModelForTokenClassification.from_pretrained(str(folder)).eval()

    def find(self, text: str) -> list[Hit]:
        out: list[Hit] = []
        for offset, piece in windows(text, WINDOW, 200):
            enc = self.tokenizer(piece, truncation=True, max_length=512, return_offsets_mapping=True,
                                 return_tensors="pt")
            offsets = enc.pop("offset_mapping")[0].tolist()
            with self.torch.no_grad():
                probs = self.model(**enc).logits[0].softmax(-1)  # (T, labels)
            best = probs.argmax(-1).tolist()
            out += _spans(piece, offsets, best, probs.max(-1).values.tolist(), offset)
        return out


def _spans(piece: str, offsets: list[list[int]], tags: list[int], probs: list[float], offset: int) -> list[Hit]:
    """Consecutive tokens of one type as spans of ``piece`` shifted by ``offset``."""
    out: list[Hit] = []
    current: list[Any] | None = None  # [type, start, end, probs]
    for (s, e), tag, p in zip(offsets, tags, probs, strict=True):
        if s == e:
            continue
        label = LABELS[tag]
        kind = label[2:] if label != "O" else None
        continues = current is not None and kind == current[0] and label.startswith("I-")
        # a word piece ("##son") belongs to the word before it, whatever its own tag
        glued = current is not None and s == current[2] and piece[s - 1:s].isalnum()
        if continues or glued:
            current[2] = e
            current[3].append(p)
            continue
        if current is not None:
            out.append(Hit(current[0], current[1] + offset, current[2] + offset, sum(current[3]) / len(current[3]),
                           f"pii.{current[0].lower()}.minilm"))
            current = None
        if kind is not None:
            current = [kind, s, e, [p]]
    if current is not None:
        out.append(Hit(current[0], current[1] + offset, current[2] + offset, sum(current[3]) / len(current[3]),
                       f"pii.{current[0].lower()}.minilm"))
    return out
