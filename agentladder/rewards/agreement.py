"""How far a judge's grades agree with reference grades: exact, within one, Spearman's rho, quadratic kappa.

A verdict that did not parse (``None``) counts as a miss in the exact and within-one shares (a judge
that cannot answer in its format has not agreed); Spearman's rho and Cohen's quadratic-weighted kappa
(Cohen 1968; scikit-learn's ``cohen_kappa_score``) are computed on the parsed verdicts only, and
``parsed`` says on how many.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def agreement(predicted: Sequence[float | None], reference: Sequence[float],
              scale: tuple[int, int] = (1, 5)) -> dict[str, Any]:
    """Agreement figures of ``predicted`` grades (``None``: unparsed) with ``reference`` (see the module docstring)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    if len(predicted) != len(reference) or not reference:
        raise ValueError("agreement needs as many predicted as reference grades, at least one")
    n = len(reference)
    pairs = [(float(p), float(r)) for p, r in zip(predicted, reference, strict=True) if p is not None]
    out: dict[str, Any] = {"rows": n, "parsed": len(pairs) / n,
                           "exact": sum(p == r for p, r in pairs) / n,
                           "within_one": sum(abs(p - r) <= 1 for p, r in pairs) / n,
                           "spearman": None, "quadratic_kappa": None}
    if len(pairs) >= 2:
        p, r = np.array(pairs).T
        if len(pairs) > 2 and len(set(p)) > 1 and len(set(r)) > 1:
            out["spearman"] = float(spearmanr(p, r).statistic)
        labels = list(range(scale[0], scale[1] + 1))
        kappa = cohen_kappa_score(np.rint(r).astype(int), np.rint(p).astype(int), labels=labels, weights="quadratic")
        out["quadratic_kappa"] = None if np.isnan(kappa) else float(kappa)
    return out


__all__ = ["agreement"]
