"""Denied topics: a topic is a name and a few example requests; a text is on the topic when it is close to them.

- **similarity** (always): the cosine between the MiniLM embedding of each piece of the text and
  each example; the topic's score is the highest. The three strength thresholds are chosen once,
  on the generator's validation split, for topics defined by a handful of examples (five
  requests drawn from the training split per topic): they are properties of the encoder's
  similarity scale, not of one topic, and every policy's topics use them.
- **a classifier** (when a topic names labelled ``data``): logistic regression on the embeddings,
  this topic's rows against all others, fitted on four fifths of the rows and its thresholds
  chosen on the fifth left out (a hash of the text decides which). Cached by the data's hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agentladder.agents.guard.calibrate import LogisticHead, choose_thresholds
from agentladder.agents.guard.data import make_guard_rows
from agentladder.agents.guard.embed import embed, embed_pieces, guard_home
from agentladder.agents.guard.policy import DeniedTopic
from agentladder.data.io import atomic_write_text, iter_json_lines
from agentladder.errors import DataError

SIMILARITY_VERSION = 1
EXAMPLES_PER_TOPIC = 5


@dataclass
class TopicScore:
    topic: str
    score: float
    rule: str


class TopicDetector:
    """Scores texts against the denied topics of a policy. See the module docstring."""

    def __init__(self, topics: list[DeniedTopic], similarity_thresholds: dict[str, float],
                 heads: dict[str, LogisticHead] | None = None):
        self.topics = topics
        self.similarity_thresholds = similarity_thresholds
        self.heads = heads or {}
        self._examples = {t.name: embed(t.examples) for t in topics}

    def threshold(self, topic: DeniedTopic, strength: str | None = None) -> float:
        head = self.heads.get(topic.name)
        table = head.thresholds if head is not None else self.similarity_thresholds
        return table[strength or topic.strength]

    def scores(self, embeddings: np.ndarray) -> list[TopicScore]:
        """Each topic's score for a text whose pieces are embedded as ``embeddings`` ``(P, 384)``."""
        out = []
        for topic in self.topics:
            head = self.heads.get(topic.name)
            if head is not None:
                score, rule = float(head.score(embeddings).max()), f"denied_topic.{topic.name}.classifier"
            else:
                score = float((embeddings @ self._examples[topic.name].T).max())
                rule = f"denied_topic.{topic.name}.similarity"
            out.append(TopicScore(topic.name, score, rule))
        return out


# -- similarity thresholds, chosen on the generator's validation split -----------------------------

def calibration_examples(seed: int = 0) -> dict[str, list[str]]:
    """Five requests per generated topic, from the training split: the examples a policy would give."""
    rows = make_guard_rows("guard-topics", "train", 600, seed=seed)
    rng = random.Random(seed)
    by_topic: dict[str, list[str]] = {}
    for r in rows:
        if r["topic"]:
            by_topic.setdefault(r["topic"], []).append(r["text"])
    return {t: rng.sample(texts, EXAMPLES_PER_TOPIC) for t, texts in sorted(by_topic.items())}


def similarity_scores(rows: list[dict], examples: dict[str, list[str]]) -> tuple[list[float], list[bool]]:
    """For each row and each topic, (the row's similarity score, whether the row is on that topic)."""
    topics = [DeniedTopic(name=t, examples=ex) for t, ex in examples.items()]
    detector = TopicDetector(topics, {})
    scores, labels = [], []
    for r, pieces in zip(rows, embed_pieces([r["text"] for r in rows]), strict=True):
        for s in detector.scores(pieces):
            scores.append(s.score)
            labels.append(r["topic"] == s.topic)
    return scores, labels


def _similarity_path(n_validation: int, seed: int) -> Path:
    return guard_home() / f"topic-similarity-v{SIMILARITY_VERSION}-n{n_validation}-s{seed}.json"


@functools.cache
def similarity_thresholds(*, n_validation: int = 1200, seed: int = 0,
                          progress: Callable[[str], None] | None = None) -> dict[str, float]:
    """The strength thresholds for similarity scores (cached on disk: chosen once per machine)."""
    path = _similarity_path(n_validation, seed)
    if path.exists():
        return json.loads(path.read_text())["thresholds"]
    if progress:
        progress(f"choosing topic similarity thresholds on {n_validation} validation rows")
    rows = make_guard_rows("guard-topics", "validation", n_validation, seed=seed)
    scores, labels = similarity_scores(rows, calibration_examples(seed))
    thresholds = choose_thresholds(scores, labels)
    atomic_write_text(path, json.dumps({"thresholds": thresholds, "n_validation": n_validation, "seed": seed}))
    return thresholds


# -- a classifier for a topic with labelled data ----------------------------------------------------

def read_topic_rows(path: str) -> list[dict]:
    """Rows ``{"text", "topic"}`` of a labelled topic file (other fields are ignored)."""
    rows = []
    for line, obj in iter_json_lines(path):
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise DataError(path, line, "text", "each row needs a text (a string)")
        topic = obj.get("topic")
        if topic is not None and not isinstance(topic, str):
            raise DataError(path, line, "topic", "a topic is a name or null")
        rows.append({"text": obj["text"], "topic": topic})
    if not rows:
        raise DataError(path, None, None, "no rows")
    return rows


def _held_out(text: str) -> bool:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 5 == 0


def topic_head(topic: DeniedTopic, *, progress: Callable[[str], None] | None = None) -> LogisticHead:
    """The topic's classifier, trained on its ``data`` (cached under the data's hash)."""
    assert topic.data is not None
    data = Path(topic.data)
    if not data.exists():
        raise DataError(data, None, None, f"file not found (the data of denied topic {topic.name!r})")
    validation = Path(topic.validation) if topic.validation else None
    if validation is not None and not validation.exists():
        raise DataError(validation, None, None, f"file not found (the validation rows of denied topic {topic.name!r})")
    key = data.read_bytes() + topic.name.encode() + (b"\0" + validation.read_bytes() if validation else b"")
    path = guard_home() / f"topic-{hashlib.sha256(key).hexdigest()[:16]}.json"
    if path.exists():
        return LogisticHead.load(path)
    rows = read_topic_rows(str(data))
    if validation is not None:
        fit, val, parts = rows, read_topic_rows(str(validation)), ((data, "rows"), (validation, "validation rows"))
    else:
        fit = [r for r in rows if not _held_out(r["text"])]
        val = [r for r in rows if _held_out(r["text"])]
        parts = ((data, "fit part of the rows"), (data, "validation part of the rows"))
    for part, (source, name) in zip((fit, val), parts, strict=True):
        if {r["topic"] == topic.name for r in part} != {True, False}:
            raise DataError(source, None, "topic", f"the {name} need rows on {topic.name!r} and rows off it")
    if progress:
        progress(f"training the classifier of topic {topic.name!r} on {len(fit)} rows")
    head = LogisticHead.fit(embed([r["text"] for r in fit]), [r["topic"] == topic.name for r in fit],
                            meta={"topic": topic.name, "data": str(data), "n_fit": len(fit),
                                  "validation": str(validation) if validation else None, "n_validation": len(val)})
    val_scores = head.score(embed([r["text"] for r in val]))
    head.thresholds = choose_thresholds(val_scores.tolist(), [r["topic"] == topic.name for r in val])
    head.save(path)
    return head


def load_topic_detector(topics: list[DeniedTopic], *, progress: Callable[[str], None] | None = None
                        ) -> TopicDetector:
    heads = {t.name: topic_head(t, progress=progress) for t in topics if t.data}
    return TopicDetector(topics, similarity_thresholds(progress=progress), heads)
