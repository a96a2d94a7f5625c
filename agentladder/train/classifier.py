"""Feature-based fine-tuning: a scikit-learn head on a frozen model's features, chosen on validation.

:func:`train_classifier` reads ``{"text", "label"}`` rows, computes the features of the training and
validation texts once (every candidate layer from one forward pass, cached on disk by
:class:`~agentladder.models.features.FeatureCache`), then tries each candidate layer with each
regularisation strength ``C``: a logistic regression with balanced class weights (each class's rows
weighted by ``n / (k * n_class)``, so a rare P1 counts as much as a common P3), fitted on train and
scored on validation by macro-F1 (ties: accuracy, then the smaller ``C``). The winner is refitted in
its final form, itself chosen on validation by the same rule among three (:data:`FINAL_FORMS`): with
calibrated probabilities (:class:`~sklearn.calibration.CalibratedClassifierCV`, Platt's sigmoid over 3
stratified folds of the training rows) answering the label of largest probability over its training
share (a balanced decision, as the balanced head's was: calibration brings the priors back); the same
calibrated head answering its plain argmax; or the head as searched (probabilities not calibrated). A
tie keeps the first. It is saved as a classifier folder
(:class:`~agentladder.models.classifier.FeatureClassifier`) whose manifest lists every configuration
and final form tried with its validation figures. The test split is never read here.

Without a validation file, a stratified, seeded ``validation_share`` of the training rows is held out
(and the final head is fitted on the rest).
"""

from __future__ import annotations

import random
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
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
from agentladder.models.classifier import BalancedMLP, FeatureClassifier, is_classifier_folder
from agentladder.models.features import FeatureCache, FeatureExtractor, FeatureSpec, cached_features
from agentladder.tasks.classification import ClassificationTask, confusion_matrix, load_labelled
from agentladder.tasks.metrics import macro_f1
from agentladder.tasks.registry import get_task
from agentladder.tasks.task import Sample

C_VALUES = (0.01, 0.1, 1.0, 10.0)
"""Regularisation strengths tried (inverse: smaller is stronger), on standardised features."""
FINAL_FORMS = ("calibrated, balanced decision", "calibrated, argmax", "not calibrated")
"""The chosen configuration's final forms, in order of preference on a tie (without ``calibrate``: the last)."""
LAYER_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
"""Without ``layers``: the hidden states at these fractions of the model's depth are tried."""


@dataclass
class ClassifierResult:
    """What :func:`train_classifier` chose and how it scored on validation."""

    out_dir: Path
    layer: int | None | list[int]
    """The chosen hidden state (a list: several, side by side; ``None``: a sentence-embedding model)."""
    c: float
    tried: list[dict[str, Any]]
    """Every configuration with its validation figures, in the order tried."""
    validation: dict[str, Any]
    """The saved head (in its chosen final form) on the validation rows: accuracy, macro-F1, recall by class,
    confusion."""
    seconds: dict[str, float] = field(default_factory=dict)
    head: str = "logistic"
    """The chosen head: ``logistic`` (``c`` is its C) or ``mlp`` (``c`` is its L2 penalty)."""


def split_validation(rows: Sequence[Sample], share: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """``(train, validation)``: a seeded ``share`` of each label's rows held out (at least one per label
    that has two or more rows)."""
    if not 0 < share < 1:
        raise ConfigError(f"validation_share must be between 0 and 1, not {share}")
    by_label: dict[str, list[Sample]] = defaultdict(list)
    for row in rows:
        by_label[row.target].append(row)
    rng = random.Random(f"classifier-validation:{seed}")
    train, held = [], []
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        k = max(1, round(share * len(group))) if len(group) > 1 else 0
        held += group[:k]
        train += group[k:]
    return train, held


def candidate_layers(extractor: FeatureExtractor, layers: Sequence[int] | None) -> list[int | None]:
    """The layers to try: those given, ``[None]`` for a sentence-embedding model, else a spread over depth."""
    if extractor.sentence:
        if layers:
            raise ConfigError(f"{extractor.model_spec}: a sentence-embedding model has no layer to choose")
        return [None]
    if layers:
        return list(dict.fromkeys(layers))
    depth = extractor.num_layers
    return sorted({max(1, round(f * depth)) for f in LAYER_FRACTIONS})


HEADS = ("logistic", "mlp")
MLP_ALPHA = 1e-2
"""The MLP head's L2 penalty (one value: the MLP stops early on a tenth of the training rows)."""


def make_head(c: float, *, calibrate: bool, seed: int = 0, kind: str = "logistic") -> Any:
    """Standardised features into a balanced logistic regression (``kind="logistic"``, strength ``C``) or a
    balanced one-hidden-layer MLP (``kind="mlp"``; ``c`` unused); with ``calibrate``, Platt-calibrated."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "mlp":
        head = make_pipeline(StandardScaler(), BalancedMLP(alpha=MLP_ALPHA, seed=seed))
    elif kind == "logistic":
        head = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=2000))
    else:
        raise ConfigError(f"head {kind!r}: choose one of {', '.join(HEADS)}")
    if not calibrate:
        return head
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    return CalibratedClassifierCV(head, method="sigmoid", cv=folds)


def figures(predicted: Sequence[str], truth: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, recall of each class and the confusion matrix of one set of predictions."""
    recall = {c: (sum(p == t == c for p, t in zip(predicted, truth, strict=True)) / n if (n := truth.count(c))
                  else None) for c in labels}
    return {"accuracy": sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth),
            "macro_f1": macro_f1(list(predicted), list(truth)), "recall": recall,
            "confusion": confusion_matrix(list(predicted), list(truth), labels), "rows": len(truth)}


def declared_labels(task: str | None, labels: Sequence[str] | None) -> list[str] | None:
    if labels and task:
        raise ConfigError("give the label set by --task or by --labels, not both")
    if task:
        found = get_task(task)
        if not isinstance(found, ClassificationTask):
            raise ConfigError(f"task {found.name!r} is not a classification task (it has no label set)")
        return list(found.labels)
    return list(labels) if labels else None


def labelled_splits(data: str, validation: str | None, *, task: str | None, labels: Sequence[str] | None,
                    validation_share: float, seed: int) -> tuple[list[Sample], list[Sample], list[str], str]:
    """The training rows, the validation rows, the label set and where validation came from: ``validation``
    when given, else a stratified, seeded ``validation_share`` of ``data`` (file:line:field errors for
    labels outside the set, blank texts and empty classes)."""
    declared = declared_labels(task, labels)
    train_rows = load_labelled(data, declared)
    label_set = declared or sorted({r.target for r in train_rows})
    if len(label_set) < 2:
        raise ConfigError(f"{data}: a classifier needs at least two labels, found {label_set}")
    if validation:
        return train_rows, load_labelled(validation, label_set), label_set, validation
    train_rows, val_rows = split_validation(train_rows, validation_share, seed)
    return train_rows, val_rows, label_set, f"{validation_share:.0%} of {data} held out (seed {seed})"


def train_classifier(
    data: str,
    out_dir: str,
    *,
    features: str = "smollm2-135m",
    layers: Sequence[int] | None = None,
    pooling: str = "mean",
    validation: str | None = None,
    validation_share: float = 0.2,
    task: str | None = None,
    labels: Sequence[str] | None = None,
    c_values: Sequence[float] = C_VALUES,
    heads: Sequence[str] = ("logistic",),
    concat: bool = False,
    calibrate: bool = True,
    max_length: int = 256,
    batch_size: int = 16,
    cache_dir: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> ClassifierResult:
    """Train a feature classifier on ``data`` and save it to ``out_dir`` (see the module docstring).

    ``features``: a causal LM (alias, folder, hub id) or ``sentence:minilm`` / ``sentence:PATH``.
    ``layers``: hidden-states indices to choose from (default: a quarter, half, three quarters and all
    of the depth). The label set comes from ``task`` (a classification task), ``labels``, or else the
    training rows; rows with other labels, blank texts and empty classes are file:line:field errors.
    """
    if Path(out_dir).exists() and any(Path(out_dir).iterdir()) and not (overwrite and is_classifier_folder(out_dir)):
        raise OutputExistsError(f"{out_dir} exists and is not empty: choose another --out")
    if not c_values:
        raise ConfigError("give at least one C to try")
    if not heads or set(heads) - set(HEADS):
        raise ConfigError(f"heads {list(heads)}: choose among {', '.join(HEADS)}")
    train_rows, val_rows, label_set, val_source = labelled_splits(
        data, validation, task=task, labels=labels, validation_share=validation_share, seed=seed)
    extractor = FeatureExtractor(features, max_length=max_length, batch_size=batch_size)
    cache = FeatureCache(cache_dir)
    start = time.perf_counter()
    tried_layers = candidate_layers(extractor, layers)
    x_train = _features(extractor, [r.input for r in train_rows], tried_layers, pooling, cache, progress, "train")
    x_val = _features(extractor, [r.input for r in val_rows], tried_layers, pooling, cache, progress, "validation")
    feature_seconds = time.perf_counter() - start
    y_train, y_val = [r.target for r in train_rows], [r.target for r in val_rows]

    start = time.perf_counter()
    tried = _search(x_train, y_train, x_val, y_val, label_set, tried_layers, concat, heads, c_values, seed)
    best = max(tried, key=lambda t: (t["macro_f1"], t["accuracy"], -t["C"]))
    chosen_layers = best["layer"] if isinstance(best["layer"], list) else None
    spec = FeatureSpec(features, chosen_layers[-1] if chosen_layers else best["layer"], pooling, max_length)
    forms = _final_forms(best, _stack(x_train, best["layer"]), y_train, _stack(x_val, best["layer"]), y_val,
                         label_set, spec, chosen_layers, calibrate, seed)
    form, classifier, chosen = max(forms, key=lambda f: (f[2]["macro_f1"], f[2]["accuracy"]))
    head_seconds = time.perf_counter() - start

    info = {"training": {"data": str(data), "rows": len(train_rows), "validation": val_source,
                         "validation_rows": len(val_rows), "calibrated": form != FINAL_FORMS[-1],
                         "final_form": form, "seed": seed, "head": HEAD_NAMES[best["head"]],
                         "C": best["C"], "configurations_tried": len(tried), "selection": "validation macro-F1"},
            "tried": tried, "final_forms": [{"form": f, **{k: v[k] for k in ("accuracy", "macro_f1", "recall")}}
                                            for f, _, v in forms],
            "validation": chosen}
    classifier.info = info
    classifier.save(out_dir, overwrite=overwrite)
    extractor.close()
    return ClassifierResult(Path(out_dir), best["layer"], best["C"], tried, chosen,
                            {"features": feature_seconds, "heads": head_seconds}, best["head"])


HEAD_NAMES = {"logistic": "StandardScaler + LogisticRegression(class_weight=balanced)",
              "mlp": "StandardScaler + MLP(256 units, balanced sample weights, early stopping)"}


def _final_forms(best: dict[str, Any], x_train: np.ndarray, y_train: list[str], x_val: np.ndarray, y_val: list[str],
                 labels: list[str], spec: FeatureSpec, layers: list[int] | None, calibrate: bool,
                 seed: int) -> list[tuple[str, FeatureClassifier, dict[str, Any]]]:
    """The chosen configuration refitted in each final form (:data:`FINAL_FORMS`), each scored on validation."""
    heads = []
    if calibrate:
        calibrated = make_head(best["C"], calibrate=True, seed=seed, kind=best["head"]).fit(x_train, y_train)
        priors = {label: y_train.count(label) / len(y_train) for label in labels}
        heads += [(FINAL_FORMS[0], calibrated, priors), (FINAL_FORMS[1], calibrated, None)]
    plain = make_head(best["C"], calibrate=False, seed=seed, kind=best["head"]).fit(x_train, y_train)
    heads.append((FINAL_FORMS[2], plain, None))
    out = []
    for form, head, priors in heads:
        classifier = FeatureClassifier(spec, labels, head, priors=priors, layers=layers)
        columns = [list(head.classes_).index(label) for label in labels]
        out.append((form, classifier, figures(classifier.decide(head.predict_proba(x_val)[:, columns]), y_val, labels)))
    return out


def _stack(x: dict[int | None, np.ndarray], layer: int | None | list[int]) -> np.ndarray:
    """The features of one layer, or several layers side by side."""
    return np.concatenate([x[i] for i in layer], axis=1) if isinstance(layer, list) else x[layer]


def _search(x_train: dict, y_train: list[str], x_val: dict, y_val: list[str], labels: list[str],
            layers: list[int | None], concat: bool, heads: Sequence[str], c_values: Sequence[float],
            seed: int) -> list[dict[str, Any]]:
    """Every candidate (each layer, and with ``concat`` all of them side by side; each head; for the
    logistic head each C) fitted on train and scored on validation, in the order tried."""
    candidates: list[int | None | list[int]] = list(layers)
    if concat and len(layers) > 1 and None not in layers:
        candidates.append(list(layers))
    tried = []
    for layer in candidates:
        for kind in dict.fromkeys(heads):
            for c in (c_values if kind == "logistic" else [MLP_ALPHA]):
                head = make_head(c, calibrate=False, seed=seed, kind=kind).fit(_stack(x_train, layer), y_train)
                scored = figures(list(head.predict(_stack(x_val, layer))), y_val, labels)
                tried.append({"layer": layer, "head": kind, "C": c,
                              **{k: scored[k] for k in ("accuracy", "macro_f1", "recall")}})
    return tried


def _features(extractor: FeatureExtractor, texts: list[str], layers: list[int | None], pooling: str,
              cache: FeatureCache, progress: bool, split: str) -> dict[int | None, np.ndarray]:
    """Every layer's features of ``texts``, through the cache, with a rich bar while a pass runs."""
    if not progress:
        return cached_features(extractor, texts, layers, pooling, cache=cache)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as bar:
        task = bar.add_task(f"features ({split}, {extractor.model_spec})", total=len(texts))
        out = cached_features(extractor, texts, layers, pooling, cache=cache,
                              progress=lambda n: bar.advance(task, n))
        bar.update(task, completed=len(texts))
    return out


__all__ = ["C_VALUES", "FINAL_FORMS", "HEADS", "ClassifierResult", "candidate_layers", "declared_labels", "figures", "make_head", "split_validation",
           "train_classifier"]
