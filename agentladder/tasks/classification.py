"""Classification tasks: rows of ``{"text", "label"}`` with a declared label set, and how answers are scored.

:class:`ClassificationTask` is the base of every task whose answer is one label (``log-triage``
is one). Rows are ``{"id"?, "text", "label"}``; :func:`load_labelled` reads them with
file:line:field errors for a row without text, a label outside the declared set, and a class
of the set that no row has. A generative model's answer is read as the first label it names
(:meth:`ClassificationTask.parse`); a trained classifier answers with the label itself, so both
are scored by the same code.

Figures (each with a bootstrap interval): ``accuracy``; ``macro_f1`` (the unweighted mean of the
classes' F1, so a rare class counts as much as a common one); ``recall`` and ``precision`` of every
class (``p1_recall`` for the class :attr:`ClassificationTask.alert` names, the costly one to miss);
``validity`` (the share of answers that name a label); a one-vs-rest confusion of the alert class and
the whole confusion matrix (``none`` counts answers that name no label).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agentladder.data.io import DataError, iter_json_lines, validate_row
from agentladder.tasks.metrics import Metric, bootstrap_ci, confusion, macro_f1, mean_metric
from agentladder.tasks.task import Parsed, Sample, Summary, Task


class LabelledRow(BaseModel):
    """One row of a classification file. Keys beyond these are allowed and ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    text: str = Field(min_length=1)
    label: str = Field(min_length=1)


def load_labelled(path: str | os.PathLike, labels: Sequence[str] | None = None, *,
                  require_every_class: bool = True) -> list[Sample]:
    """The rows of a ``{"text", "label"}`` JSONL file as samples (``target`` is the label).

    With ``labels``, a row whose label is outside the set is a :class:`DataError` at its line and
    field ``label``, and (with ``require_every_class``) so is a class of the set no row has.
    A row whose text is blank is an error at field ``text``; a repeated id at field ``id``.
    """
    allowed = list(labels) if labels else None
    samples: list[Sample] = []
    first_line: dict[str, int] = {}
    for lineno, obj in iter_json_lines(path):
        row = validate_row(LabelledRow, obj, path, lineno)
        if not row.text.strip():
            raise DataError(path, lineno, "text", "the text is blank")
        if allowed is not None and row.label not in allowed:
            raise DataError(path, lineno, "label", f"{row.label!r} is not one of the labels {', '.join(allowed)}")
        rid = str(row.id) if row.id is not None else f"line-{lineno}"
        if rid in first_line:
            raise DataError(path, lineno, "id", f"duplicate id {rid!r} (first on line {first_line[rid]})")
        first_line[rid] = lineno
        samples.append(Sample(rid, row.text, row.label))
    if not samples:
        raise DataError(path, None, None, "no rows")
    if allowed is not None and require_every_class:
        counts = Counter(s.target for s in samples)
        empty = [label for label in allowed if not counts[label]]
        if empty:
            raise DataError(path, None, "label", f"no row has the label {', '.join(map(repr, empty))} "
                            f"(labels {', '.join(allowed)}): every class needs rows")
    return samples


def find_label(output: str, labels: Sequence[str]) -> str | None:
    """The first of ``labels`` that ``output`` names as a whole word (any case), or ``None``."""
    if not labels:
        return None
    pattern = r"(?<![A-Za-z0-9])(" + "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True)) + r")(?![A-Za-z0-9])"
    match = re.search(pattern, output, flags=re.IGNORECASE)
    if match is None:
        return None
    said = match.group(1).lower()
    return next(label for label in labels if label.lower() == said)


class ClassificationTask(Task):
    """A task whose answer is one label of :attr:`labels`. See the module docstring."""

    labels: ClassVar[tuple[str, ...]] = ()
    """The declared label set, in the order reports show the classes."""
    alert: ClassVar[str | None] = None
    """The class that is costly to miss: its recall is a headline metric and its confusion is plotted."""
    headline: ClassVar[str] = "macro_f1"
    max_new_tokens: ClassVar[int] = 8
    row_scores: ClassVar[dict[str, str]] = {"accuracy": "correct", "validity": "valid"}

    def load(self, path: str | os.PathLike) -> list[Sample]:
        return load_labelled(path, self.labels)

    def to_row(self, sample: Sample) -> dict[str, Any]:
        return {"id": sample.id, "text": sample.input, "label": sample.target}

    def target_text(self, sample: Sample) -> str:
        return str(sample.target)

    def parse(self, output: str) -> Parsed:
        label = find_label(output, self.labels)
        if label is None:
            return Parsed(None, False, f"names none of the labels {', '.join(self.labels)}")
        return Parsed(label, True)

    def score(self, sample: Sample, parsed: Parsed) -> dict[str, Any]:
        return {"predicted": parsed.value, "label": sample.target, "valid": parsed.valid,
                "correct": parsed.value == sample.target}

    def summarise(self, samples: Sequence[Sample], scores: Sequence[dict[str, Any]], *,
                  n_resamples: int = 1000, seed: int = 0) -> Summary:
        kw = {"n_resamples": n_resamples, "seed": seed}
        pairs = [(s["predicted"], s["label"]) for s in scores]

        def stat(rows: list[tuple[Any, Any]]) -> float:
            return macro_f1([p for p, _ in rows], [t for _, t in rows])

        low, high = bootstrap_ci(pairs, stat, **kw)
        recall = {c: mean_metric([p == c if t == c else None for p, t in pairs], **kw) for c in self.labels}
        precision = {c: mean_metric([t == c if p == c else None for p, t in pairs], **kw) for c in self.labels}
        metrics: dict[str, Metric] = {}
        if self.alert is not None:
            metrics[f"{self.alert.lower()}_recall"] = recall[self.alert]
        metrics["accuracy"] = mean_metric([s["correct"] for s in scores], **kw)
        metrics["macro_f1"] = Metric(stat(pairs), low, high, len(pairs))
        metrics["validity"] = mean_metric([s["valid"] for s in scores], **kw)
        confusions = {}
        if self.alert is not None:
            confusions[f"{self.alert.lower()}_flag"] = confusion([p == self.alert for p, _ in pairs],
                                                                 [t == self.alert for _, t in pairs])
        matrix = confusion_matrix([p for p, _ in pairs], [t for _, t in pairs], self.labels)
        return Summary(metrics=metrics, breakdowns={"recall": recall, "precision": precision}, confusions=confusions,
                       matrices={"confusion_matrix": matrix})


def confusion_matrix(predicted: Sequence[str | None], labels_true: Sequence[str],
                     labels: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{true: {predicted: count}}`` over ``labels`` (an answer naming no label counts as ``none``)."""
    out = {t: {**dict.fromkeys(labels, 0), "none": 0} for t in labels}
    for p, t in zip(predicted, labels_true, strict=True):
        out[t]["none" if p is None else p] += 1
    return out


__all__ = ["ClassificationTask", "LabelledRow", "confusion_matrix", "find_label", "load_labelled"]
