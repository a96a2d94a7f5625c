"""Classifiers served next to the base model: ``/classify`` in vLLM's shape, and chat that answers a label.

``agentladder serve --classifier triage=runs/cls1`` loads a classifier folder (a head on frozen
features or a LoRA sequence classifier, :func:`~agentladder.models.seqclassifier.load_classifier`)
under the name ``triage``. Two ways to call it:

- ``POST /classify`` (also ``/v1/classify``), the body and answer vLLM's classification API uses:
  ``{"model": "triage", "input": "text" | ["text", ...]}`` answers
  ``{"object": "list", "data": [{"index", "label", "probs", "num_classes"}], "usage"}`` with
  ``probs`` in the order of the classifier's labels (the card in ``/v1/models`` lists them);
- ``POST /v1/chat/completions`` with ``"model": "triage"``: the answer's content is the label of
  the last user turn's text, so an OpenAI client, an agent or the gateway calls a classifier like
  any other model (the same rule as :class:`~agentladder.models.providers.classifier.ClassifierProvider`);
  streamed, the label comes as one content chunk. Tools are refused (400): a classifier calls none.

A classifier answers in a worker thread, one batch at a time (its lock), so the base model's
decoding steps go on while it runs.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from agentladder.errors import ConfigError
from agentladder.models.seqclassifier import load_classifier
from agentladder.serve.errors import bad_request
from agentladder.serve.schemas import ChatCompletionRequest, _Body

MAX_INPUTS = 2048
"""Most texts per ``/classify`` request."""


class ClassificationRequest(_Body):
    """vLLM's ``/classify`` body (other fields are accepted and ignored)."""

    model: Annotated[str, Field(min_length=1)]
    input: str | Annotated[list[str], Field(min_length=1)]


class ServedClassifier:
    """One classifier folder and its name in requests and ``/v1/models``."""

    def __init__(self, name: str, path: str | Path):
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"--classifier {name}={path}: no such folder")
        self.name, self.path = name, str(folder)
        self.classifier = load_classifier(folder)
        self.classifier.prepare()
        self.labels = list(self.classifier.labels)
        self.created = int(time.time())
        self._lock = threading.Lock()

    def card(self) -> dict[str, Any]:
        return {"id": self.name, "object": "model", "created": self.created, "owned_by": "agentladder",
                "root": self.path, "parent": None, "labels": self.labels}

    def classify(self, texts: list[str]) -> tuple[list[str], list[list[float]], int]:
        """``(labels, probabilities, tokens read)`` of ``texts``: blocking, one call at a time."""
        with self._lock:
            proba = self.classifier.predict_proba(texts)
            return (self.classifier.decide(proba), [[float(p) for p in row] for row in proba],
                    self._tokens(texts))

    def _tokens(self, texts: list[str]) -> int:
        """Tokens the classifier's model read (within its length limit); 0 for a sentence-embedding model,
        whose tokenizer is internal to sentence-transformers."""
        clf = self.classifier
        tokenizer = getattr(clf, "tokenizer", None)
        extractor = getattr(clf, "extractor", None)
        if tokenizer is None and extractor is not None:
            tokenizer = extractor.tokenizer
        if tokenizer is None:
            return 0
        limit = getattr(clf, "max_length", None) or clf.spec.max_length
        return sum(min(len(ids), limit) for ids in tokenizer(texts)["input_ids"])

    async def answer(self, body: ClassificationRequest) -> dict[str, Any]:
        """The ``/classify`` response for a validated body."""
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if len(texts) > MAX_INPUTS:
            raise bad_request(f"at most {MAX_INPUTS} inputs per request, not {len(texts)}", "input")
        if any(not t.strip() for t in texts):
            raise bad_request("every input needs text to classify", "input")
        labels, probs, tokens = await asyncio.to_thread(self.classify, texts)
        data = [{"index": i, "label": label, "probs": p, "num_classes": len(self.labels)}
                for i, (label, p) in enumerate(zip(labels, probs, strict=True))]
        return {"id": f"classify-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
                "model": self.name, "data": data, "usage": _usage(tokens)}

    async def chat(self, body: ChatCompletionRequest) -> dict[str, Any]:
        """A chat completion whose content is the label of the last user turn (every choice the same)."""
        if body.tools:
            raise bad_request(f"`{self.name}` is a classifier: it answers with a label and calls no tools", "tools")
        text = next((m.text for m in reversed(body.messages) if m.role == "user" and m.text), None)
        if not text:
            raise bad_request("a classifier needs a user message with text to classify", "messages")
        labels, _, tokens = await asyncio.to_thread(self.classify, [text])
        message = {"role": "assistant", "content": labels[0]}
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": body.model, "system_fingerprint": None, "usage": _usage(tokens),
                "choices": [{"index": i, "message": dict(message), "logprobs": None, "finish_reason": "stop"}
                            for i in range(body.n)]}


def _usage(tokens: int) -> dict[str, int]:
    """A classifier reads tokens and generates none (as vLLM counts ``/classify``)."""
    return {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}


def load_classifiers(specs: dict[str, str]) -> dict[str, ServedClassifier]:
    """Each ``name -> folder`` loaded (errors name the option)."""
    return {name: ServedClassifier(name, path) for name, path in specs.items()}


__all__ = ["MAX_INPUTS", "ClassificationRequest", "ServedClassifier", "load_classifiers"]
