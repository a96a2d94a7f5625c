"""A trained feature classifier as a provider: it answers every conversation with one label.

``make_provider("runs/cls1")`` gives a :class:`ClassifierProvider` when the folder holds a
classifier (``classifier.json``, :mod:`agentladder.models.classifier`), so a classifier is
evaluated side by side with generative models (``agentladder eval --model runs/cls1 --model
smollm2-135m``) and called by agents like any other model. It classifies the text of the last user
turn; the system prompt and any few-shot turns before it are a generative model's instructions and
do not reach the classifier. The answer's text is the label; every label's probability for the texts
of the last call is in :attr:`ClassifierProvider.last_probabilities`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from agentladder.data.schema import Message
from agentladder.models.classifier import FeatureClassifier
from agentladder.models.providers.base import (
    ChatResponse,
    ProgressFn,
    Prompt,
    Provider,
    ProviderError,
    TextFn,
    Usage,
)
from agentladder.models.providers.toolcalls import ToolSpec
from agentladder.models.seqclassifier import LoraClassifier, load_classifier


def last_user_text(messages: Sequence[Message]) -> str:
    """The content of the last user turn: what a classifier classifies."""
    for message in reversed(messages):
        if message.role == "user" and message.content:
            return message.content
    raise ProviderError("a classifier needs a user turn with text to classify")


class ClassifierProvider(Provider):
    """A classifier folder behind the provider protocol (see the module docstring)."""

    provider_name = "agentladder.classifier"

    def __init__(self, folder: str, *, batch_size: int = 16, name: str | None = None):
        self.folder = folder
        self.name = name or folder
        self.batch_size = batch_size
        self._classifier: FeatureClassifier | LoraClassifier | None = None
        self.last_probabilities: list[dict[str, float]] = []
        """Each label's probability for the texts of the last call, in order."""

    @property
    def classifier(self) -> FeatureClassifier | LoraClassifier:
        if self._classifier is None:
            self._classifier = load_classifier(self.folder, batch_size=self.batch_size)
        return self._classifier

    def prepare(self) -> None:
        self.classifier.prepare()

    def _classify(self, texts: list[str], progress: ProgressFn | None = None) -> list[str]:
        clf = self.classifier
        proba = clf.predict_proba(texts, progress)
        self.last_probabilities = [{label: float(p) for label, p in zip(clf.labels, row, strict=True)}
                                   for row in proba]
        return clf.decide(proba)

    def complete(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 stop_at_json: bool = False, progress: ProgressFn | None = None) -> list[str]:
        """The label of each prompt's last user turn; the generation settings do not apply."""
        return self._classify([last_user_text(p) for p in prompts], progress)

    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False, on_text: TextFn | None = None) -> ChatResponse:
        if tools:
            raise ProviderError(f"{self.name} is a classifier: it answers with a label and calls no tools")
        start = time.perf_counter()
        label = self._classify([last_user_text(messages)])[0]
        if on_text is not None:
            on_text(label)
        return ChatResponse(Message(role="assistant", content=label), Usage(), model=Path(self.folder).name,
                            finish_reason="stop", seconds=time.perf_counter() - start)

    def close(self) -> None:
        if self._classifier is not None:
            self._classifier.close()
            self._classifier = None


__all__ = ["ClassifierProvider", "last_user_text"]
