"""Prompt injection: instructions smuggled into a user's input or a tool's result.

Two detectors, and the higher of their scores counts:

- **heuristics**: named patterns for the moves injections make (telling the model to ignore its
  instructions, giving it a new role or "mode", asking for its system prompt, forging chat-template
  delimiters or a system turn, asking it to hide something from the user, or to send data away);
  each has a fixed score, and the one that fires is the finding's rule;
- **a classifier**: logistic regression on MiniLM embeddings of each piece of the text
  (:func:`~agentladder.agents.guard.embed.segments`), trained on the generator's training split,
  its thresholds per strength chosen on the validation split
  (:func:`~agentladder.agents.guard.calibrate.choose_thresholds`), cached under
  ``$AGENTLADDER_HOME/guard`` (``agentladder guard train`` builds it ahead of time).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agentladder.agents.guard.calibrate import LogisticHead, choose_thresholds
from agentladder.agents.guard.data import make_guard_rows
from agentladder.agents.guard.embed import embed, embed_pieces, guard_home, segments

_W = r"(?:\W+\w+){0,3}?\W+"  # up to three words in between
HEURISTICS: dict[str, tuple[re.Pattern[str], float]] = {
    "ignore_instructions": (re.compile(
        r"(?i)\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)\W+(?:all\W+|any\W+|every\W+)?"
        r"(?:of\W+)?(?:the\W+|your\W+|my\W+|these\W+|those\W+)?(?:previous|prior|above|earlier|preceding|original|"
        r"initial|existing|current|system|safety|old)\W+(?:\w+\W+){0,2}?(?:instructions?|prompts?|rules?|"
        r"directions?|guidelines?|directives?|guardrails?|policies|polic(?:y)|constraints?|programming|context)"),
        0.95),
    "ignore_everything": (re.compile(
        r"(?i)\b(?:ignore|disregard|forget)\W+(?:everything|all(?:\W+of)?\W+that)\W+(?:\w+\W+){0,3}?"
        r"(?:told|said|instructed|given|above|before)"), 0.9),
    "new_instructions": (re.compile(
        r"(?i)\b(?:new|updated|real|actual|true|revised|secret|hidden)\W+(?:system\W+)?(?:instructions?|"
        r"directives?|orders|rules?|task|prompt)\W*(?::|are\b|is\b|follow\b)"), 0.75),
    "role_override": (re.compile(
        r"(?i)\b(?:you\W+are\W+(?:now|no\W+longer)\b|from\W+now\W+on\W*,?\W*you\b|developer\W+mode|"
        r"jailbr(?:eak|oken)|\bDAN\b|do\W+anything\W+now|unfiltered\W+(?:model|ai|assistant|mode)|"
        r"without\W+(?:any\W+)?(?:restrictions|filters|limits|rules)|no\W+(?:restrictions|filters|rules)\W+apply)"),
        0.85),
    "prompt_leak": (re.compile(
        r"(?i)\b(?:reveal|show|print|repeat|output|display|leak|dump|disclose|tell\W+me|give\W+me|what\W+(?:is|are|were))"
        r"\W+(?:me\W+)?(?:\w+\W+){0,3}?(?:system\W+(?:prompt|message|instructions?)|initial\W+(?:prompt|"
        r"instructions?)|hidden\W+(?:prompt|instructions?)|(?:your|the)\W+(?:original\W+)?instructions\W+"
        r"(?:above|verbatim|word\W+for\W+word)|context\W+window)"), 0.85),
    "forged_delimiters": (re.compile(
        r"(?i)(?:<\|im_start\|>|<\|im_end\|>|<\|system\|>|<\|assistant\|>|<\|user\|>|\[/?INST\]|<<SYS>>|"
        r"</?system>|</user>|^\s*#{2,}\s*(?:system|instruction)s?\b|^\s*(?:system|assistant)\s*:|"
        r"\b(?:BEGIN|END)\W+(?:SYSTEM|ADMIN|DEVELOPER)\b)", re.MULTILINE), 0.9),
    "conceal": (re.compile(
        r"(?i)\b(?:do\W+not|don'?t|never|without)\W+(?:tell(?:ing)?|mention(?:ing)?|inform(?:ing)?|reveal(?:ing)?|"
        r"let(?:ting)?\W+know)\W+(?:this\W+to\W+)?(?:the\W+|your\W+)?(?:user|customer|human|operator)"), 0.8),
    "exfiltrate": (re.compile(
        r"(?i)\b(?:send|forward|email|e-mail|post|upload|exfiltrate|leak|transmit)\W+(?:\w+\W+){0,5}?"
        r"(?:conversation|chat\W+history|system\W+prompt|database|passwords?|api\W+keys?|credentials|"
        r"tokens?|secrets?|customer\W+data|card\W+numbers?)\b"), 0.8),
    "authority_claim": (re.compile(
        r"(?i)\b(?:the\W+)?(?:admin(?:istrator)?|developers?|openai|anthropic|system\W+administrator|your\W+creators?)"
        r"\W+(?:has|have|says?|said|authori[sz]ed|instructs?|wants?)\W+(?:\w+\W+){0,2}?you\W+(?:to\W+|should\W+|must\W+|can\W+)"),
        0.75),
}
"""Named patterns and their scores. Written from the shapes of published injection attacks, not from any
labelled set this project measures on."""


def heuristic_hits(view: str) -> list[tuple[str, int, int, float]]:
    """``(rule, start, end, score)`` for each heuristic that fires in ``view``."""
    out = []
    for name, (pattern, score) in HEURISTICS.items():
        for m in pattern.finditer(view):
            out.append((name, m.start(), m.end(), score))
    return out


@dataclass
class InjectionScore:
    score: float
    rule: str
    span: tuple[int, int] | None
    """Where a heuristic fired (in the view), or ``None`` when the classifier decided."""


class InjectionDetector:
    """Heuristics plus the classifier. See the module docstring."""

    def __init__(self, head: LogisticHead | None):
        self.head = head

    @property
    def thresholds(self) -> dict[str, float]:
        """The score each strength needs; heuristics alone use thresholds chosen on the same validation rows."""
        return self.head.thresholds if self.head is not None else heuristic_thresholds()

    def score(self, view: str, embeddings: np.ndarray | None = None) -> InjectionScore:
        """The text's injection score (the best of the heuristics and the classifier over its pieces)."""
        best = InjectionScore(0.0, "injection.none", None)
        for name, start, end, score in heuristic_hits(view):
            if score > best.score:
                best = InjectionScore(score, f"injection.heuristic.{name}", (start, end))
        if self.head is not None:
            if embeddings is None:
                embeddings = embed(segments(view))
            p = float(self.head.score(embeddings).max()) if len(embeddings) else 0.0
            if p > best.score:
                best = InjectionScore(p, "injection.classifier", None)
        return best


@functools.cache
def heuristic_thresholds(n_validation: int = 1500, seed: int = 0) -> dict[str, float]:
    """Strength thresholds for the heuristics alone, chosen on generated validation rows."""
    validation = make_guard_rows("guard-injection", "validation", n_validation, seed=seed)
    scores = [InjectionDetector(None).score(r["text"]).score for r in validation]
    return choose_thresholds(scores, [bool(r["injection"]) for r in validation])


INJECTION_VERSION = 1
"""Bumped when the generator or the training changes, so a stale cached classifier is rebuilt."""


def train_injection_head(*, n_train: int = 4000, n_validation: int = 1500, seed: int = 0,
                         progress: Callable[[str], None] | None = None) -> LogisticHead:
    """The classifier: fit on ``n_train`` generated training rows, thresholds chosen on ``n_validation`` rows."""
    say = progress or (lambda _: None)
    train = make_guard_rows("guard-injection", "train", n_train, seed=seed)
    validation = make_guard_rows("guard-injection", "validation", n_validation, seed=seed)
    say(f"embedding {len(train)} training rows")
    x, y = _piece_embeddings(train)
    head = LogisticHead.fit(x, y, meta={"version": INJECTION_VERSION, "n_train": n_train, "seed": seed})
    say(f"choosing thresholds on {len(validation)} validation rows")
    detector = InjectionDetector(head)
    pieces = embed_pieces([r["text"] for r in validation])
    scores = [detector.score(r["text"], e).score for r, e in zip(validation, pieces, strict=True)]
    head.thresholds = choose_thresholds(scores, [bool(r["injection"]) for r in validation])
    return head


def _piece_embeddings(rows: list[dict]) -> tuple[np.ndarray, list[bool]]:
    """One example per row: its text cut at 2,000 characters. Generated rows are about one piece long, so
    training sees what scoring sees (scoring takes the highest score over a text's pieces)."""
    return embed([r["text"][:2000] for r in rows]), [bool(r["injection"]) for r in rows]


def injection_head_path(n_train: int = 4000, seed: int = 0):
    return guard_home() / f"injection-v{INJECTION_VERSION}-n{n_train}-s{seed}.json"


def load_injection_detector(*, train: bool = True, progress: Callable[[str], None] | None = None
                            ) -> InjectionDetector:
    """The detector with its classifier from the cache, trained first when missing (``train``), or heuristics
    alone when ``train`` is false and nothing is cached."""
    path = injection_head_path()
    if path.exists():
        return InjectionDetector(LogisticHead.load(path))
    if not train:
        return InjectionDetector(None)
    head = train_injection_head(progress=progress)
    head.save(path)
    return InjectionDetector(head)
