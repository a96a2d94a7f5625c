"""Features of texts from a frozen model, computed once and cached on disk.

A :class:`FeatureSpec` says where a text's vector comes from:

- a causal LM (an alias, a folder, a LoRA run folder, a hub id): the hidden states of one layer
  (``layer`` indexes ``output_hidden_states``: 0 is the embeddings, ``N`` the last of ``N`` blocks,
  negative counts from the end), pooled over the text's tokens by ``mean`` (padding left out) or
  ``last`` (the last real token, which in a causal model has seen the whole text);
- a sentence-embedding model (``sentence:minilm`` for the packaged all-MiniLM-L6-v2, or
  ``sentence:PATH`` for any sentence-transformers folder): its normalised embedding
  (:func:`~agentladder.models.embedding.embed`); ``layer`` and ``pooling`` do not apply.

:class:`FeatureCache` keeps each matrix under a key of the model's identity (an alias, or a folder's
path with the sizes and times of its weight files), the layer, the pooling, the token limit and a
hash of the texts, and checks the stored manifest against all of them before reusing a file: a
cache written for another model, layer, pooling or data is never read back. One forward pass gives
every layer, so choosing the layer on a validation split costs one pass, not one per layer; and the pass
stops at the deepest layer asked for (a classifier on layer 10 of 30 runs 11 of the 30 blocks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentladder.errors import ConfigError
from agentladder.models.embedding import embed
from agentladder.models.loading import ALIASES, TINY_ALIAS, cache_dir, load_model

POOLINGS = ("mean", "last")
SENTENCE = "sentence:"
"""Prefix of a sentence-embedding spec: ``sentence:minilm`` or ``sentence:PATH``."""
CACHE_VERSION = 1
ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class FeatureSpec:
    """Which model, which layer and which pooling make a text's feature vector (see the module docstring)."""

    model: str
    layer: int | None = None
    """Hidden-states index of a causal LM; ``None`` for a sentence-embedding model."""
    pooling: str = "mean"
    max_length: int = 256
    """Tokens kept of each text (the rest cut off)."""

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling {self.pooling!r}: choose one of {', '.join(POOLINGS)}")
        if self.sentence and self.layer is not None:
            raise ConfigError(f"{self.model}: a sentence-embedding model has no layer to choose")
        if not self.sentence and self.layer is None:
            raise ConfigError(f"{self.model}: the features of a causal LM need a layer")
        if self.max_length < 1:
            raise ConfigError(f"max_length must be at least 1, not {self.max_length}")

    @property
    def sentence(self) -> bool:
        return self.model.startswith(SENTENCE)

    def to_json(self) -> dict:
        return asdict(self)


def model_identity(model: str) -> str:
    """What identifies a model's weights: an alias by name; a folder by its resolved path and the names,
    sizes and modification times of its files; anything else (a hub id) as written."""
    name = model[len(SENTENCE):] if model.startswith(SENTENCE) else model
    if name in ALIASES or name == TINY_ALIAS or name.lower() in ("minilm", "all-minilm-l6-v2"):
        return model
    path = Path(name).expanduser()
    if path.is_dir():
        files = sorted((p.relative_to(path).as_posix(), p.stat().st_size, int(p.stat().st_mtime))
                       for p in path.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".bin", ".json"))
        return f"{model}@{path.resolve()}#" + hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]
    return model


def texts_hash(texts: Sequence[str]) -> str:
    """A hash of the texts, in order."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def cache_key(spec: FeatureSpec, texts: Sequence[str]) -> dict:
    """Everything a cached matrix depends on; two calls share a file only when all of it is equal."""
    return {"version": CACHE_VERSION, "model": model_identity(spec.model), "layer": spec.layer,
            "pooling": None if spec.sentence else spec.pooling, "max_length": spec.max_length,
            "texts": texts_hash(texts), "rows": len(texts)}


class FeatureCache:
    """Feature matrices on disk (``ROOT/KEY.npy`` with a ``ROOT/KEY.json`` manifest), written atomically."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "features"

    def _paths(self, key: dict) -> tuple[Path, Path]:
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        return self.root / f"{name}.npy", self.root / f"{name}.json"

    def get(self, spec: FeatureSpec, texts: Sequence[str]) -> np.ndarray | None:
        """The stored matrix for exactly this spec and these texts, or ``None``."""
        key = cache_key(spec, texts)
        array_path, meta_path = self._paths(key)
        if not (array_path.exists() and meta_path.exists()):
            return None
        try:
            if json.loads(meta_path.read_text(encoding="utf-8")) != key:
                return None
            array = np.load(array_path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return array if array.shape[0] == len(texts) else None

    def put(self, spec: FeatureSpec, texts: Sequence[str], array: np.ndarray) -> Path:
        """Store ``array`` for this spec and these texts; returns the matrix's path."""
        key = cache_key(spec, texts)
        array_path, meta_path = self._paths(key)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, array_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".json.tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(key, fh, sort_keys=True)
        os.replace(tmp, meta_path)
        return array_path


class FeatureExtractor:
    """A frozen model that turns texts into feature matrices, loaded on first use."""

    def __init__(self, model: str, *, max_length: int = 256, batch_size: int = 16, device: str = "cpu"):
        self.model_spec, self.max_length, self.batch_size, self.device = model, max_length, batch_size, device
        self._model = self._tokenizer = None

    @property
    def sentence(self) -> bool:
        return self.model_spec.startswith(SENTENCE)

    def load(self) -> None:
        """Load the causal LM (a sentence-embedding model loads inside :func:`embed`, once per process)."""
        if self.sentence or self._model is not None:
            return
        self._model, self._tokenizer = load_model(self.model_spec, device=self.device)
        self._model.eval()
        # Right padding: a causal model's real tokens never see the pads after them, and their positions
        # start at 0, so a text's features do not depend on the batch it is in.
        self._tokenizer.padding_side = "right"

    @property
    def tokenizer(self) -> Any:
        """The causal LM's tokenizer (loading the model), None for a sentence-embedding model."""
        if self.sentence:
            return None
        self.load()
        return self._tokenizer

    @property
    def num_layers(self) -> int:
        """Transformer blocks of the causal LM (``output_hidden_states`` has one more entry)."""
        if self.sentence:
            raise ConfigError(f"{self.model_spec}: a sentence-embedding model has no layers to choose")
        self.load()
        return int(self._model.config.num_hidden_layers)

    def features(self, texts: Sequence[str], layers: Sequence[int | None], pooling: str = "mean",
                 progress: ProgressFn | None = None) -> dict[int | None, np.ndarray]:
        """``{layer: (N, D) float32}`` for ``texts``: every layer from one forward pass per batch."""
        if self.sentence:
            return {None: self._sentence_features(texts, progress)}
        self.load()
        n_states = self.num_layers + 1
        for layer in layers:
            if layer is None or not -n_states <= layer < n_states:
                raise ConfigError(f"{self.model_spec} has hidden states 0..{n_states - 1}: no layer {layer}")
        wanted = {layer: layer % n_states for layer in layers}
        out = {layer: np.zeros((len(texts), self._model.config.hidden_size), np.float32) for layer in layers}
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)  # similar lengths pad less
        backbone = _backbone(self._model)
        with _only_blocks(backbone, max(wanted.values()) + 1):
            for start in range(0, len(order), self.batch_size):
                ids = order[start:start + self.batch_size]
                enc = self._tokenizer([texts[i] for i in ids], padding=True, truncation=True,
                                      max_length=self.max_length, return_tensors="pt").to(self.device)
                with torch.no_grad():
                    states = backbone(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                      output_hidden_states=True).hidden_states  # (B, T, D) per state
                for layer, index in wanted.items():
                    out[layer][ids] = pool(states[index], enc["attention_mask"], pooling).float().cpu().numpy()
                if progress is not None:
                    progress(len(ids))
        return out

    def _sentence_features(self, texts: Sequence[str], progress: ProgressFn | None) -> np.ndarray:
        name = self.model_spec[len(SENTENCE):]
        chunks = []
        for start in range(0, len(texts), 256):
            part = list(texts[start:start + 256])
            chunks.append(embed(part, model=name).numpy())
            if progress is not None:
                progress(len(part))
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 0), np.float32)

    def close(self) -> None:
        self._model = self._tokenizer = None


@contextlib.contextmanager
def _only_blocks(backbone, keep: int) -> Iterator[None]:
    """Run only the first ``keep`` transformer blocks inside the block: hidden state ``i`` is the input of
    block ``i``, so the states up to ``keep - 1`` are those of the whole model, at ``keep / N`` of the cost.
    A model whose blocks are not a ``layers`` list runs whole."""
    blocks = getattr(backbone, "layers", None)
    if not isinstance(blocks, torch.nn.ModuleList) or keep >= len(blocks):
        yield
        return
    backbone.layers = torch.nn.ModuleList(list(blocks)[:keep])
    try:
        yield
    finally:
        backbone.layers = blocks


def _backbone(model):
    """The transformer under a causal LM (no vocabulary projection, which features do not need)."""
    prefix = getattr(model, "base_model_prefix", None)
    inner = getattr(model, prefix, None) if prefix else None
    return inner if isinstance(inner, torch.nn.Module) else model


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """``(B, T, D)`` hidden states to ``(B, D)``: the mean over real tokens (``mask`` 1), or the last real
    token (found from the mask, so left and right padding both work)."""
    mask = mask.to(hidden.dtype)
    if pooling == "mean":
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    if pooling == "last":
        last = mask.shape[1] - 1 - mask.flip(1).argmax(1)  # (B,) index of the last 1
        return hidden[torch.arange(hidden.shape[0]), last]
    raise ConfigError(f"pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")


def cached_features(extractor: FeatureExtractor, texts: Sequence[str], layers: Sequence[int | None],
                    pooling: str = "mean", *, cache: FeatureCache | None = None,
                    progress: ProgressFn | None = None) -> dict[int | None, np.ndarray]:
    """:meth:`FeatureExtractor.features` through ``cache``: layers already stored are read back, the
    rest computed in one pass and stored. ``progress`` hears of rows only when a pass runs."""
    specs = {layer: FeatureSpec(extractor.model_spec, layer, pooling, extractor.max_length) for layer in layers}
    found = {layer: cache.get(spec, texts) for layer, spec in specs.items()} if cache else {}
    missing = [layer for layer in layers if found.get(layer) is None]
    if missing:
        computed = extractor.features(texts, missing, pooling, progress)
        for layer in missing:
            found[layer] = computed[layer]
            if cache is not None:
                cache.put(specs[layer], texts, computed[layer])
    return {layer: found[layer] for layer in layers}


__all__ = ["POOLINGS", "SENTENCE", "FeatureCache", "FeatureExtractor", "FeatureSpec", "cache_key", "cached_features",
           "model_identity", "pool", "texts_hash"]
