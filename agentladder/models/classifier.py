"""A trained feature classifier: a frozen model's features and a scikit-learn head, saved as one folder.

The folder holds ``classifier.json`` (the manifest: format, features, labels, how it was trained
and chosen) and ``head.joblib`` (the fitted scikit-learn estimator, with ``predict_proba`` and
``classes_`` in the manifest's label order). The feature model is named in the manifest, not
copied: ``smollm2-135m`` loads from its package, a folder from where it was.

``head.joblib`` is a pickle: load only classifier folders you trust, as with any pickled model.

Training (choosing the layer and regularisation on a validation split) is in
:mod:`agentladder.train.classifier`; here is only what answering needs, so the provider layer
(:mod:`agentladder.models.providers.classifier`) can serve a classifier like any other model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentladder.errors import ConfigError, MissingFileError, OutputExistsError
from agentladder.models.features import (
    FeatureCache,
    FeatureExtractor,
    FeatureSpec,
    ProgressFn,
    cached_features,
)

MANIFEST = "classifier.json"
HEAD = "head.joblib"
FORMAT = "agentladder-classifier"
VERSION = 1


try:
    from sklearn.base import BaseEstimator, ClassifierMixin
except ImportError:  # the classifier extra is not installed: BalancedMLP cannot be fitted, the rest works
    BaseEstimator = ClassifierMixin = object  # type: ignore[assignment,misc]


class BalancedMLP(ClassifierMixin, BaseEstimator):
    """scikit-learn's ``MLPClassifier`` (one hidden layer, early stopping) fitted with each class's rows
    weighted by ``n / (k * n_class)``, as ``class_weight="balanced"`` does for the logistic regression.
    A small non-linear head: it can read a conjunction (a critical service *and* a high error rate) that a
    linear head on the same features cannot."""

    def __init__(self, hidden: int = 256, alpha: float = 1e-2, seed: int = 0):
        self.hidden, self.alpha, self.seed = hidden, alpha, seed

    def fit(self, x: np.ndarray, y: Sequence[str]) -> BalancedMLP:
        from sklearn.neural_network import MLPClassifier
        from sklearn.utils.class_weight import compute_sample_weight

        self.model_ = MLPClassifier((self.hidden,), alpha=self.alpha, max_iter=300, early_stopping=True,
                                    random_state=self.seed)
        self.model_.fit(x, y, sample_weight=compute_sample_weight("balanced", y))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model_.predict(x)


def is_classifier_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by :meth:`FeatureClassifier.save`."""
    return (Path(path).expanduser() / MANIFEST).is_file()


@dataclass
class FeatureClassifier:
    """A frozen model's features (:class:`FeatureSpec`) and a fitted head that maps them to ``labels``."""

    spec: FeatureSpec
    labels: list[str]
    head: Any
    """A fitted scikit-learn classifier whose ``classes_`` are ``labels`` (in any order)."""
    info: dict[str, Any] = field(default_factory=dict)
    """How it was trained and chosen: data, configurations tried, validation figures (JSON values)."""
    priors: dict[str, float] | None = None
    """Each label's share of the training rows. With them the answer is the label of largest
    ``p(label | text) / prior(label)`` (a balanced decision: calibrated probabilities carry the training
    priors back in, and their plain argmax would mostly answer the common class); without, the plain argmax."""
    batch_size: int = 16
    layers: list[int] | None = None
    """Several hidden states of the causal LM, concatenated in this order (one pass gives them all);
    ``None``: only ``spec.layer``."""
    _extractor: FeatureExtractor | None = field(default=None, repr=False)

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = FeatureExtractor(self.spec.model, max_length=self.spec.max_length,
                                               batch_size=self.batch_size)
        return self._extractor

    def prepare(self) -> None:
        """Load the feature model now (it otherwise loads on the first call)."""
        self.extractor.load()

    def features(self, texts: Sequence[str], progress: ProgressFn | None = None,
                 cache: FeatureCache | None = None) -> np.ndarray:
        """``(N, D)`` features of ``texts`` as the head was trained on them."""
        if self.layers:
            found = cached_features(self.extractor, texts, self.layers, self.spec.pooling, cache=cache,
                                    progress=progress)
            return np.concatenate([found[layer] for layer in self.layers], axis=1)
        if cache is not None:
            found = cache.get(self.spec, texts)
            if found is not None:
                return found
        array = self.extractor.features(texts, [self.spec.layer], self.spec.pooling, progress)[self.spec.layer]
        if cache is not None:
            cache.put(self.spec, texts, array)
        return array

    def predict_proba(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        """``(N, K)`` probabilities, columns in the order of :attr:`labels`."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        proba = self.head.predict_proba(self.features(texts, progress))
        columns = [list(self.head.classes_).index(label) for label in self.labels]
        return proba[:, columns]

    def decide(self, proba: np.ndarray) -> list[str]:
        """The answer for each row of ``(N, K)`` probabilities (see :attr:`priors`)."""
        scores = proba if not self.priors else proba / np.asarray([self.priors[label] for label in self.labels])
        return [self.labels[i] for i in scores.argmax(axis=1)]

    def predict(self, texts: Sequence[str], progress: ProgressFn | None = None) -> list[str]:
        """The label of each text (:meth:`decide` on :meth:`predict_proba`)."""
        return self.decide(self.predict_proba(texts, progress))

    def manifest(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "features": self.spec.to_json(), "labels": self.labels,
                "head": HEAD, "priors": self.priors,
                **({"layers": self.layers} if self.layers else {}), **self.info}

    def save(self, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the folder atomically (a temporary folder renamed into place); returns it."""
        import joblib

        folder = Path(folder)
        if folder.exists() and any(folder.iterdir()):
            if not overwrite:
                raise OutputExistsError(f"{folder} exists and is not empty: choose another --out")
            if not is_classifier_folder(folder):
                raise OutputExistsError(f"{folder} holds something other than a classifier: not overwriting it")
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            joblib.dump(self.head, tmp / HEAD)
            (tmp / MANIFEST).write_text(json.dumps(self.manifest(), indent=2) + "\n", encoding="utf-8")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, *, batch_size: int = 16) -> FeatureClassifier:
        """Read a folder written by :meth:`save`; the feature model loads on first use."""
        import joblib

        folder = Path(folder).expanduser()
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise MissingFileError(f"{folder}: no {MANIFEST} (not a classifier folder)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{manifest_path}: invalid JSON ({err.msg})") from None
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise ConfigError(f"{manifest_path}: not an {FORMAT} manifest of version {VERSION}")
        head_path = folder / manifest.get("head", HEAD)
        if not head_path.is_file():
            raise MissingFileError(f"{folder}: the head {head_path.name} is missing")
        head = joblib.load(head_path)
        labels = list(manifest["labels"])
        if sorted(map(str, head.classes_)) != sorted(labels):
            raise ConfigError(f"{folder}: the head's classes {list(head.classes_)} are not the labels {labels}")
        known = ("format", "version", "features", "labels", "head", "priors", "layers")
        info = {k: v for k, v in manifest.items() if k not in known}
        return cls(FeatureSpec(**manifest["features"]), labels, head, info, manifest.get("priors"), batch_size,
                   manifest.get("layers"))

    def close(self) -> None:
        """Free the feature model."""
        if self._extractor is not None:
            self._extractor.close()
            self._extractor = None


__all__ = ["FORMAT", "HEAD", "MANIFEST", "BalancedMLP", "FeatureClassifier", "is_classifier_folder"]
