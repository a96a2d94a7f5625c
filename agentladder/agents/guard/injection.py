"""Prompt injection: instructions smuggled into a user's input or a tool's result.

Two detectors, and the higher of their scores counts:

- **heuristics**: named patterns for the moves injections make (telling the model to ignore its
  instructions, giving it a new role or "mode", asking for its system prompt, forging chat-template
  delimiters or a system turn, asking it to hide something from the user, or to send data away);
  each has a fixed score, and the one that fires is the finding's rule;
- **a classifier**: logistic regression on MiniLM embeddings of each piece of the text
  (:func:`~agentladder.agents.guard.embed.segments`), trained on the generator's training split
  (attacks, benign text with the same words, and ordinary traffic as negatives), its piece length,
  regularisation and thresholds per strength chosen on the validation split
  (:func:`train_injection_head`, :func:`~agentladder.agents.guard.calibrate.choose_thresholds`),
  cached under ``$AGENTLADDER_HOME/guard`` (``agentladder guard train`` builds it ahead of time).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agentladder.agents.guard.calibrate import LogisticHead, choose_thresholds
from agentladder.agents.guard.data import make_guard_rows
from agentladder.agents.guard.embed import SEGMENT_CHARS, embed, embed_pieces, guard_home, segments

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


PIECE_CHARS = (160, 400)
"""The piece lengths tried for the classifier (sentences packed up to this many characters): a short
piece keeps one smuggled sentence from being averaged into the document around it."""
C_VALUES = (0.1, 1.0, 10.0)
"""The regularisation strengths tried (scikit-learn's ``C``: smaller is simpler)."""


class InjectionDetector:
    """Heuristics plus the classifier. See the module docstring."""

    def __init__(self, head: LogisticHead | None):
        self.head = head

    @property
    def thresholds(self) -> dict[str, float]:
        """The score each strength needs; heuristics alone use thresholds chosen on the same validation rows."""
        return self.head.thresholds if self.head is not None else heuristic_thresholds()

    @property
    def piece_chars(self) -> int:
        """The piece length the classifier reads (chosen on validation with the classifier)."""
        return int(self.head.meta.get("piece_chars", SEGMENT_CHARS)) if self.head is not None else SEGMENT_CHARS

    def pieces(self, view: str) -> list[str]:
        """``view`` cut into the pieces the classifier scores (the highest piece counts)."""
        return segments(view, self.piece_chars)

    def score(self, view: str, embeddings: np.ndarray | None = None) -> InjectionScore:
        """The text's injection score: the best of the heuristics and the classifier over its pieces
        (``embeddings``: those of :meth:`pieces`, computed here when not given)."""
        best = InjectionScore(0.0, "injection.none", None)
        for name, start, end, score in heuristic_hits(view):
            if score > best.score:
                best = InjectionScore(score, f"injection.heuristic.{name}", (start, end))
        if self.head is not None:
            if embeddings is None:
                embeddings = embed(self.pieces(view))
            p = float(self.head.score(embeddings).max()) if len(embeddings) else 0.0
            if p > best.score:
                best = InjectionScore(p, "injection.classifier", None)
        return best


@functools.cache
def heuristic_thresholds(n_validation: int = 2400, seed: int = 0) -> dict[str, float]:
    """Strength thresholds for the heuristics alone, chosen on generated validation rows."""
    validation = make_guard_rows("guard-eval", "validation", n_validation, seed=seed)
    scores = [InjectionDetector(None).score(r["text"]).score for r in validation]
    return choose_thresholds(scores, [bool(r["injection"]) for r in validation])


INJECTION_VERSION = 2
"""Bumped when the generator or the training changes, so a stale cached classifier is rebuilt."""


def train_injection_head(*, n_train: int = 4000, n_validation: int = 2400, seed: int = 0,
                         progress: Callable[[str], None] | None = None) -> LogisticHead:
    """The classifier, chosen and calibrated on validation.

    Training rows: ``n_train`` injection rows (attacks in user input and in tool results, and benign text
    that uses the same words) and ``n_train // 2`` rows of ordinary traffic (``guard-eval``: personal data,
    topic requests, injections), so every kind of text a gateway sees is among the negatives. Each row is
    cut into pieces; an attack inside a document labels only the pieces that carry it. Validation rows
    (``guard-eval``, templates training never used) are scored as the guard scores them: the best of the
    heuristics and the classifier's highest piece. Every piece length in :data:`PIECE_CHARS` with every C
    in :data:`C_VALUES` is fitted; the one with the best average precision on validation is kept, and
    the strength thresholds are chosen on the same rows.
    """
    from sklearn.metrics import average_precision_score  # the guard extra

    say = progress or (lambda _: None)
    train = make_guard_rows("guard-injection", "train", n_train, seed=seed) + \
        make_guard_rows("guard-eval", "train", n_train // 2, seed=seed)
    validation = make_guard_rows("guard-eval", "validation", n_validation, seed=seed)
    labels = [bool(r["injection"]) for r in validation]
    heuristic = np.array([InjectionDetector(None).score(r["text"]).score for r in validation])
    best: tuple[float, LogisticHead, list[float]] | None = None
    tried = []
    for chars in PIECE_CHARS:
        say(f"embedding the pieces of {len(train)} training and {len(validation)} validation rows "
            f"({chars} characters)")
        texts, y = labelled_pieces(train, chars)
        x = embed(texts)
        val_pieces = embed_pieces([r["text"] for r in validation], chars)
        for c in C_VALUES:
            head = LogisticHead.fit(x, y, c=c)
            scores = np.maximum(heuristic, [float(head.score(e).max()) for e in val_pieces]).tolist()
            ap = float(average_precision_score(labels, scores))
            tried.append({"piece_chars": chars, "c": c, "validation_average_precision": round(ap, 4)})
            if best is None or ap > best[0]:
                best = (ap, head, scores)
                head.meta = {"piece_chars": chars, "c": c}
    assert best is not None
    _, head, scores = best
    head.meta.update({"version": INJECTION_VERSION, "n_train": n_train, "n_validation": n_validation,
                      "seed": seed, "tried": tried})
    head.thresholds = choose_thresholds(scores, labels)
    say(f"kept {head.meta['piece_chars']} characters, C {head.meta['c']} of {len(tried)} configurations")
    return head


_WORD = re.compile(r"\w+")


def labelled_pieces(rows: list[dict], chars: int) -> tuple[list[str], list[bool]]:
    """Every row's pieces (:func:`segments` at ``chars``) with a label each: a benign row's pieces are
    benign; an attack in user input labels all its pieces; an attack inside a document (its span in
    ``metadata["inject"]``) labels the pieces whose words come mostly from the attack."""
    texts: list[str] = []
    labels: list[bool] = []
    for r in rows:
        pieces = segments(r["text"], chars)
        span = (r.get("metadata") or {}).get("inject")
        if not r["injection"] or span is None:
            texts += pieces
            labels += [bool(r["injection"])] * len(pieces)
            continue
        attack = set(_WORD.findall(r["text"][span[0]:span[1]].lower()))
        for piece in pieces:
            words = _WORD.findall(piece.lower())
            texts.append(piece)
            labels.append(bool(words) and sum(w in attack for w in words) >= 0.5 * len(words))
    return texts, labels


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
