"""``/v1/embeddings``: the packaged all-MiniLM-L6-v2, or any sentence-transformers folder.

Inputs are strings or token ids (decoded with the embedding model's own tokenizer);
the answer is OpenAI's list of ``{"object": "embedding", "index", "embedding"}``,
normalised to unit length (so a dot product is the cosine), as floats or as
base64 of little-endian float32 (``encoding_format: "base64"``, what the ``openai``
Python client asks for by default). ``dimensions`` keeps the first N components,
renormalised (sentence-transformers' ``truncate_dim``). Encoding runs in a worker
thread, one batch at a time.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from pathlib import Path
from typing import Any

import numpy as np

from agentladder.models.embedding import MINILM, embedder_path, load_embedder
from agentladder.serve.errors import bad_request
from agentladder.serve.schemas import EmbeddingRequest

MAX_INPUTS = 2048
"""Most inputs per request (OpenAI's limit)."""


class Embedder:
    """One sentence-embedding model and its name in ``/v1/models``."""

    def __init__(self, spec: str | None = None, *, name: str | None = None):
        path = embedder_path(spec)
        self.spec = str(path)
        self.name = name or (MINILM if spec is None or str(spec).lower() in (MINILM.lower(), "minilm")
                             else Path(spec).name)
        self.model = load_embedder(path)
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension() or 0)
        self.max_tokens = int(getattr(self.model, "max_seq_length", 0) or 512)
        self._lock = threading.Lock()

    def card(self) -> dict[str, Any]:
        return {"id": self.name, "object": "model", "created": 0, "owned_by": "agentladder", "root": self.spec,
                "parent": None, "max_model_len": self.max_tokens}

    def texts(self, body: EmbeddingRequest) -> list[str]:
        """The request's inputs as texts."""
        data = body.input
        if isinstance(data, str):
            return [data]
        if data and isinstance(data[0], int):
            data = [data]  # type: ignore[list-item]
        if len(data) > MAX_INPUTS:
            raise bad_request(f"at most {MAX_INPUTS} inputs per request, not {len(data)}", "input")
        tok = self.model.tokenizer
        out = []
        for item in data:
            if isinstance(item, str):
                out.append(item)
            else:
                if any(t < 0 or t >= len(tok) for t in item):
                    raise bad_request(f"token ids must be in [0, {len(tok)})", "input")
                out.append(tok.decode(item, skip_special_tokens=True))
        return out

    def encode(self, texts: list[str], dimensions: int | None) -> tuple[np.ndarray, int]:
        """``(vectors (N, D), tokens read)``: blocking, one call at a time."""
        with self._lock:
            vectors = self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False, batch_size=64)
            tokens = sum(min(len(ids), self.max_tokens) for ids in self.model.tokenizer(texts)["input_ids"])
        vectors = np.asarray(vectors, dtype=np.float32)
        if dimensions is not None:
            vectors = vectors[:, :dimensions]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors, tokens

    async def answer(self, body: EmbeddingRequest) -> dict[str, Any]:
        """The ``/v1/embeddings`` response for a validated body."""
        if body.dimensions is not None and body.dimensions > self.dim:
            raise bad_request(f"dimensions must be at most {self.dim} for {self.name}", "dimensions")
        texts = self.texts(body)
        vectors, tokens = await asyncio.to_thread(self.encode, texts, body.dimensions)
        data = []
        for i, v in enumerate(vectors):
            value: Any = (base64.b64encode(v.astype("<f4").tobytes()).decode() if body.encoding_format == "base64"
                          else v.tolist())
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {"object": "list", "data": data, "model": self.name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


__all__ = ["MAX_INPUTS", "Embedder"]
