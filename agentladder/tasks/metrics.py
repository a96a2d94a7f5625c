"""Metrics as small pure functions, and bootstrap confidence intervals.

Every headline figure of a report is a :class:`Metric`: a value, a
percentile-bootstrap 95 % interval and the number of rows it rests on.
Rows that a metric does not apply to (an unscored judge verdict, a safe row
for a recall) are passed as ``None`` and left out, never counted as wrong.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Metric:
    """A figure with its confidence interval."""

    value: float | None
    """The statistic on all rows it applies to; ``None`` when it applies to none."""
    low: float | None = None
    """Lower end of the 95 % percentile-bootstrap interval."""
    high: float | None = None
    """Upper end of the interval."""
    n: int = 0
    """How many rows the figure rests on."""

    def to_json(self) -> dict:
        return {"value": self.value, "ci": [self.low, self.high], "n": self.n}

    def __str__(self) -> str:
        if self.value is None:
            return "n/a"
        if self.low is None or self.high is None:
            return f"{self.value:.3f}"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def numbers_equal(a: float, b: float, rel: float = 1e-6) -> bool:
    """``|a - b| <= rel * max(|a|, |b|)``: equal within a relative tolerance (0 equals only 0)."""
    return abs(a - b) <= rel * max(abs(a), abs(b))


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not ``None``; ``None`` if there are none."""
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def accuracy(predictions: Sequence, targets: Sequence) -> float:
    """Share of positions where ``prediction == target``."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    if not targets:
        raise ValueError("accuracy of no rows")
    return sum(p == t for p, t in zip(predictions, targets, strict=True)) / len(targets)


def precision_recall_f1(predictions: Sequence[bool], targets: Sequence[bool]) -> tuple[float, float, float]:
    """Binary precision ``TP/(TP+FP)``, recall ``TP/(TP+FN)`` and ``F1 = 2PR/(P+R)``; 0 where undefined."""
    tp = sum(bool(p) and bool(t) for p, t in zip(predictions, targets, strict=True))
    fp = sum(bool(p) and not t for p, t in zip(predictions, targets, strict=True))
    fn = sum(not p and bool(t) for p, t in zip(predictions, targets, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def macro_f1(predictions: Sequence, targets: Sequence) -> float:
    """Unweighted mean over the target classes of each class's one-vs-rest F1."""
    classes = sorted(set(targets), key=repr)
    if not classes:
        raise ValueError("F1 of no rows")
    scores = [precision_recall_f1([p == c for p in predictions], [t == c for t in targets])[2] for c in classes]
    return sum(scores) / len(scores)


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation or articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, target: str) -> float:
    """SQuAD token F1 between two texts after :func:`normalise_answer` (Rajpurkar et al., 2016)."""
    pred, gold = normalise_answer(prediction).split(), normalise_answer(target).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def confusion(predictions: Sequence[bool | None], targets: Sequence[bool | None]) -> dict[str, int]:
    """Counts of a binary flag: ``tp``, ``fn``, ``fp``, ``tn`` (rows whose target is ``None`` skipped)."""
    out = {"tp": 0, "fn": 0, "fp": 0, "tn": 0}
    for p, t in zip(predictions, targets, strict=True):
        if t is None:
            continue
        key = ("t" if bool(p) == t else "f") + ("p" if p else "n")
        out[key] += 1
    return out


def bootstrap_ci(
    values: Sequence[Any],
    statistic: Callable[[list[Any]], float] | None = None,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of ``statistic`` over rows (Efron and Tibshirani, 1993, ch. 13).

    Resamples the rows with replacement ``n_resamples`` times and returns the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the
    statistic. Without ``statistic`` the rows are numbers (``None`` rows are
    dropped first) and the statistic is their mean, vectorised; with one, the
    rows can be anything (``(prediction, target)`` pairs for a macro-F1).
    Seeded, so a report is reproducible.
    """
    rng = np.random.default_rng(seed)
    if statistic is None:
        kept = np.asarray([float(v) for v in values if v is not None])
        if kept.size == 0:
            return None, None
        idx = rng.integers(0, kept.size, size=(n_resamples, kept.size))  # (R, n) row indices
        draws = kept[idx].mean(axis=1)
    else:
        rows = list(values)
        if not rows:
            return None, None
        idx = rng.integers(0, len(rows), size=(n_resamples, len(rows)))
        draws = np.asarray([statistic([rows[i] for i in sample]) for sample in idx])
    lo_q, hi_q = (1 - confidence) / 2, (1 + confidence) / 2
    return float(np.quantile(draws, lo_q)), float(np.quantile(draws, hi_q))


def mean_metric(values: Sequence[float | bool | None], *, n_resamples: int = 1000, seed: int = 0) -> Metric:
    """The mean of the values that are not ``None``, with its bootstrap interval."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return Metric(None, None, None, 0)
    low, high = bootstrap_ci(kept, n_resamples=n_resamples, seed=seed)
    return Metric(sum(kept) / len(kept), low, high, len(kept))


# -- paired comparisons: two models on the same rows --------------------------------------------------
@dataclass(frozen=True)
class PairedTest:
    """Two models scored right or wrong on the same rows, and how sure the difference is."""

    gained: int
    """``b``: rows the second model gets right and the first wrong."""
    lost: int
    """``c``: rows the first model gets right and the second wrong."""
    n: int
    """Rows both models were scored on."""
    p: float
    """Two-sided exact McNemar p of ``gained`` against ``lost``."""
    gain: float
    """``(b - c) / n``: the second model's accuracy minus the first's."""
    gain_ci: tuple[float | None, float | None]
    """95 % paired-bootstrap interval of ``gain`` (the rows resampled together)."""

    def to_json(self) -> dict[str, Any]:
        return {"gained": self.gained, "lost": self.lost, "n": self.n, "p": self.p, "gain": self.gain,
                "gain_ci": list(self.gain_ci)}


def mcnemar_exact(gained: int, lost: int) -> float:
    """Two-sided exact McNemar test: ``min(1, 2 P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``.

    ``b`` and ``c`` are the discordant rows (right only after, right only before); the rows both models get
    right or both wrong say nothing about which is better. 1.0 when there is no discordant row.
    McNemar, *Psychometrika* 12 (1947); the exact (binomial) form as in Fagerland et al., *BMC Medical
    Research Methodology* 13:91 (2013), equal to ``scipy.stats.binomtest(min(b, c), b + c, 0.5)``.
    """
    if gained < 0 or lost < 0:
        raise ValueError("counts of discordant rows cannot be negative")
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(gained, lost) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_test(before: Sequence[bool | None], after: Sequence[bool | None], *, n_resamples: int = 2000,
                seed: int = 0) -> PairedTest:
    """McNemar's exact test and a paired-bootstrap interval of the gain, over rows both sides score.

    ``before[i]`` and ``after[i]`` are the same row under two models (right, wrong, or ``None`` where it
    does not apply, which leaves the row out).
    """
    if len(before) != len(after):
        raise ValueError(f"{len(before)} rows before, {len(after)} after: a paired test needs the same rows")
    rows = [(bool(a), bool(b)) for a, b in zip(before, after, strict=True) if a is not None and b is not None]
    gained = sum(b and not a for a, b in rows)
    lost = sum(a and not b for a, b in rows)
    diffs = [float(b) - float(a) for a, b in rows]
    low, high = bootstrap_ci(diffs, n_resamples=n_resamples, seed=seed)
    return PairedTest(gained, lost, len(rows), mcnemar_exact(gained, lost),
                      (gained - lost) / len(rows) if rows else 0.0, (low, high))
