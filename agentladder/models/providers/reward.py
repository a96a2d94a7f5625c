"""A trained reward model as a provider: it answers a conversation with the reward of its last answer.

``make_provider("runs/rm1")`` gives a :class:`RewardModelProvider` when the folder holds a reward model
(``reward_model.json``, :mod:`agentladder.models.rewardmodel`), recognised by its manifest as a
classifier folder is by ``classifier.json``. A reward model generates nothing: it reads a conversation
that ends with the answer to score (one or more assistant turns after the prompt) and replies with the
reward as text (``"1.2345"``); :meth:`RewardModelProvider.score` gives the numbers for (prompt,
answer) pairs. The texts are rendered through **the reward model's own chat template and tokenised
with its own tokenizer**, so answers written by a policy with another tokenizer are scored as they
read. Rewards are normalised by the mean and standard deviation of the model's training rewards (as
the RL reward uses them) unless ``normalize=False``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from agentladder.data.schema import Message
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
from agentladder.models.rewardmodel import RewardModel


def split_answer(messages: Sequence[Message]) -> tuple[list[Message], list[Message]]:
    """``(prompt, answer)``: the trailing assistant turns are the answer a reward model scores."""
    cut = len(messages)
    while cut > 0 and messages[cut - 1].role == "assistant":
        cut -= 1
    if cut == len(messages) or cut == 0:
        raise ProviderError("a reward model scores a conversation that ends with an assistant answer after a "
                            "prompt: give the prompt's turns, then the answer as an assistant turn")
    return list(messages[:cut]), list(messages[cut:])


class RewardModelProvider(Provider):
    """A reward model folder behind the provider protocol (see the module docstring)."""

    provider_name = "agentladder.reward_model"

    def __init__(self, folder: str, *, batch_size: int = 8, normalize: bool = True, name: str | None = None):
        self.folder = folder
        self.name = name or folder
        self.batch_size = batch_size
        self.normalize = normalize
        self._model: RewardModel | None = None
        self.last_scores: list[float] = []
        """The rewards of the last call, in order."""

    @property
    def model(self) -> RewardModel:
        if self._model is None:
            self._model = RewardModel.load(self.folder, batch_size=self.batch_size)
        return self._model

    def prepare(self) -> None:
        _ = self.model

    def score(self, prompts: Sequence[Sequence[Message] | str], answers: Sequence[Sequence[Message] | str], *,
              normalize: bool | None = None) -> list[float]:
        """The reward of each prompt's answer; a string is one user (prompt) or assistant (answer) turn."""
        def turns(x: Sequence[Message] | str, role: str) -> list[Message]:
            return [Message(role=role, content=x)] if isinstance(x, str) else list(x)

        scores = self.model.score([turns(p, "user") for p in prompts], [turns(a, "assistant") for a in answers],
                                  normalize=self.normalize if normalize is None else normalize)
        self.last_scores = [float(s) for s in scores]
        return self.last_scores

    def score_conversations(self, conversations: Sequence[Prompt]) -> list[float]:
        """The reward of each conversation's last answer (its trailing assistant turns)."""
        split = [split_answer(c) for c in conversations]
        return self.score([p for p, _ in split], [a for _, a in split])

    def complete(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 128, temperature: float = 0.0,
                 stop_at_json: bool = False, progress: ProgressFn | None = None) -> list[str]:
        """Each conversation's reward as text; the generation settings do not apply."""
        scores = self.score_conversations(prompts)
        if progress is not None:
            progress(len(prompts))
        return [f"{s:.4f}" for s in scores]

    def chat(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (), max_new_tokens: int = 256,
             temperature: float = 0.0, json_output: bool = False, on_text: TextFn | None = None) -> ChatResponse:
        if tools:
            raise ProviderError(f"{self.name} is a reward model: it scores an answer and calls no tools")
        start = time.perf_counter()
        text = f"{self.score_conversations([messages])[0]:.4f}"
        if on_text is not None:
            on_text(text)
        return ChatResponse(Message(role="assistant", content=text), Usage(), model=Path(self.folder).name,
                            finish_reason="stop", seconds=time.perf_counter() - start)

    def close(self) -> None:
        self._model = None


__all__ = ["RewardModelProvider", "split_answer"]
