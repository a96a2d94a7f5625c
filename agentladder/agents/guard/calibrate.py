"""Strength levels as thresholds chosen on a validation split, and a logistic-regression head on embeddings.

A detector gives a score per text; a strength level is a threshold on it, chosen on
labelled validation rows (never on the test rows a figure is reported on):

- ``low``: the lowest threshold whose precision on validation is at least ``LOW_PRECISION``
  (it fires only when nearly sure: fewest false alarms);
- ``medium``: the threshold with the best F1 on validation;
- ``high``: the highest threshold whose recall on validation is at least ``HIGH_RECALL``
  (it misses least).

Thresholds are kept ordered (``low >= medium >= high``). The head is scikit-learn's
``LogisticRegression`` on the MiniLM embeddings; only its weights are kept (a few
kilobytes of JSON), so scoring needs numpy alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentladder.data.io import atomic_write_text

LOW_PRECISION = 0.98
HIGH_RECALL = 0.97
STRENGTHS = ("low", "medium", "high")


def choose_thresholds(scores: Sequence[float], labels: Sequence[bool]) -> dict[str, float]:
    """``{"low", "medium", "high"}`` thresholds on ``scores`` from validation ``labels`` (see the module)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if y.sum() == 0 or (~y).sum() == 0:
        raise ValueError("choosing thresholds needs positive and negative validation rows")
    candidates = np.unique(s)
    if candidates.size > 1:  # the lowest score as a threshold fires on every row: never a useful level
        candidates = candidates[1:]
    # precision and recall of "score >= t" for each candidate t, vectorised: (C, N)
    fires = s[None, :] >= candidates[:, None]
    tp = (fires & y).sum(axis=1)
    fp = (fires & ~y).sum(axis=1)
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
    recall = tp / y.sum()
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    medium = float(candidates[int(np.argmax(f1))])
    precise = np.flatnonzero(precision >= LOW_PRECISION)
    low = float(candidates[precise[0]]) if precise.size else float(candidates[-1])
    recalled = np.flatnonzero(recall >= HIGH_RECALL)
    high = float(candidates[recalled[-1]]) if recalled.size else float(candidates[0])
    low = max(low, medium)
    high = min(high, medium)
    return {"low": low, "medium": medium, "high": high}


@dataclass
class LogisticHead:
    """``sigmoid(x @ coef + intercept)``: a logistic-regression classifier kept as its weights."""

    coef: np.ndarray
    intercept: float
    thresholds: dict[str, float]
    meta: dict[str, Any]

    def score(self, x: np.ndarray) -> np.ndarray:
        """Probability of the positive class for each row of ``x`` ``(N, D)``."""
        return 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))

    @classmethod
    def fit(cls, x: np.ndarray, y: Sequence[bool], *, c: float = 1.0, meta: dict[str, Any] | None = None
            ) -> LogisticHead:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        model.fit(x, np.asarray(y, dtype=int))
        return cls(model.coef_[0].astype(np.float32), float(model.intercept_[0]), {}, dict(meta or {}))

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps({"coef": [round(float(v), 7) for v in self.coef],
                                            "intercept": self.intercept, "thresholds": self.thresholds,
                                            "meta": self.meta}))

    @classmethod
    def load(cls, path: str | os.PathLike) -> LogisticHead:
        obj = json.loads(Path(path).read_text())
        return cls(np.asarray(obj["coef"], dtype=np.float32), float(obj["intercept"]), obj["thresholds"],
                   obj.get("meta", {}))
