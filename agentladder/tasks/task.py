"""A task is a dataset, a prompt builder, an output parser, scorers and a reward.

Subclass :class:`Task`, fill in :meth:`~Task.load`, :meth:`~Task.prompt`,
:meth:`~Task.parse`, :meth:`~Task.score` and :meth:`~Task.summarise`, and
register an instance with :func:`register_task`; it is then found by name
(``agentladder eval --task NAME``). A task defined outside the package is
found as ``module:attribute`` (``--task mypkg.tasks:triage``).

A task gives one reward for a scored answer (:meth:`Task.reward`): pair building,
RL's ``task`` reward and the ladder all call it, so a task rewards the same answer
the same way everywhere.

How the prompt and the reference answer are written is a value passed with the task,
a :class:`~agentladder.tasks.style.PromptStyle` (:meth:`Task.styled`): another system
instruction, a lower-cased user turn, a compact answer. A task may name a few styles of
its own (:attr:`Task.styles`), chosen with ``NAME@STYLE`` wherever a task is named
(``--task medication-directions@brief``): the same rows, parser and scorers behind a
different prompt.

The prompt goes through the model's own chat template: a task builds
messages, never raw strings. Few-shot examples come from the task's training
pool (:meth:`~Task.shot_pool`), never from the rows being evaluated.
"""

from __future__ import annotations

import copy
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agentladder.data.schema import Conversation, Message
from agentladder.errors import ConfigError
from agentladder.tasks.metrics import Metric
from agentladder.tasks.reward import metric_value, scores_reward
from agentladder.tasks.style import PromptStyle


@dataclass
class Sample:
    """One row to evaluate: an input, its ground truth, and anything else the scorers need."""

    id: str
    input: str
    """What the model is given (the task's prompt builder wraps it into messages)."""
    target: Any
    """Ground truth, in whatever shape the task's scorers compare against."""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parsed:
    """A model output turned into the task's structure."""

    value: Any
    """What could be read from the output (may be partial when ``valid`` is false)."""
    valid: bool
    """Whether the output has exactly the shape the task asks for."""
    error: str | None = None
    """Why it is not valid."""

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "value": self.value, "error": self.error}


@dataclass
class Summary:
    """A task's figures for one model over all its rows."""

    metrics: dict[str, Metric]
    """Headline figures, in the order a report shows them."""
    breakdowns: dict[str, dict[str, Metric]] = field(default_factory=dict)
    """Figures split by part (``field_accuracy`` by field); plotted as grouped bars."""
    confusions: dict[str, dict[str, int]] = field(default_factory=dict)
    """Binary-flag confusion counts (``tp``, ``fn``, ``fp``, ``tn``); plotted as 2x2 grids."""
    matrices: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    """Confusion matrices of a label answer, ``{truth: {answer: count}}``; plotted as K x K grids."""


def input_key(text: str) -> str:
    """A row's input as rows are compared across splits and rungs: lower case, single spaces."""
    return " ".join(text.lower().split())


class Task(ABC):
    """Dataset + prompt + parser + scorers + reward. See the module docstring."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    headline: ClassVar[str] = "accuracy"
    """The metric a one-number comparison uses."""
    max_new_tokens: ClassVar[int] = 128
    """Default generation budget for one answer."""
    stop_at_json: ClassVar[bool] = False
    """Whether generation may stop once the output holds one complete JSON object."""
    default_split: ClassVar[tuple[str, int]] = ("test", 300)
    """Split and size generated when no data file is given (tasks with a generator)."""
    styles: ClassVar[Mapping[str, PromptStyle]] = {}
    """The task's named prompt styles, chosen as ``NAME@STYLE`` wherever a task is named."""
    splits: ClassVar[tuple[str, ...]] = ()
    """The splits :meth:`make` can generate (``train``, ``validation``, ``test``, ...); empty without a generator."""
    row_scores: ClassVar[Mapping[str, str]] = {}
    """For a summary metric that is a mean over rows, the key of :meth:`score` it averages
    (``{"exact_match": "exact"}``): what a paired test between two models on the same rows compares."""
    style: PromptStyle = PromptStyle()
    """The style this task object shows (the default: its own :meth:`system_prompt` and answers)."""

    def styled(self, style: str | PromptStyle, *, name: str | None = None) -> Task:
        """A copy of this task that shows ``style``: one of its named :attr:`styles`, or any :class:`PromptStyle`.

        The copy is named ``NAME@STYLE`` after ``name``, or the named style's own name; a style given as
        a value without a ``name`` keeps the task's name. The task itself is left as it is.
        """
        base = self.name.partition("@")[0]
        if isinstance(style, str):
            if style not in self.styles:
                known = ", ".join(sorted(self.styles)) or "none"
                raise ConfigError(f"task {base!r} has no instructions {style!r} (it has: {known})")
            name, style = name or style, self.styles[style]
        other = copy.copy(self)
        other.name = base if name is None else f"{base}@{name}"
        other.style = style
        return other

    @abstractmethod
    def load(self, path: str | os.PathLike) -> list[Sample]:
        """Read a data file; a bad row raises :class:`~agentladder.data.DataError` with file and line."""

    def make(self, split: str, n: int, seed: int = 0) -> list[Sample]:
        """Generate ``n`` rows of a split (tasks with a data generator only)."""
        raise ConfigError(f"task {self.name!r} has no data generator: pass a data file")

    def shot_pool(self) -> list[Sample]:
        """Rows few-shot examples are drawn from (the training split); empty when there is none."""
        return []

    def system_prompt(self) -> str | None:
        """The instruction shown before every example, or ``None`` for none."""
        return None

    def user_message(self, sample: Sample) -> str:
        """The user turn for one row (lower-cased when the :attr:`style` says so)."""
        return sample.input.lower() if self.style.lowercase_input else sample.input

    def target_text(self, sample: Sample) -> str:
        """The ideal answer as text: the SFT target, and the reference for similarity and judges."""
        return str(sample.target)

    def prompt(self, sample: Sample, shots: Sequence[Sample] = ()) -> list[Message]:
        """Messages for one row: system instruction, then each shot as a user/assistant pair, then the row."""
        messages = []
        system = self.system_prompt() if self.style.instructions is None else self.style.instructions
        if system:
            messages.append(Message(role="system", content=system))
        for shot in shots:
            messages.append(Message(role="user", content=self.user_message(shot)))
            messages.append(Message(role="assistant", content=self.target_text(shot)))
        messages.append(Message(role="user", content=self.user_message(sample)))
        return messages

    def to_row(self, sample: Sample) -> dict[str, Any]:
        """The row as the task's data files write it (what :meth:`load` reads back)."""
        return {"id": sample.id, "input": sample.input, "target": sample.target}

    def to_sft(self, sample: Sample) -> Conversation:
        """The row as an SFT conversation with exactly the zero-shot evaluation prompt."""
        messages = [*self.prompt(sample), Message(role="assistant", content=self.target_text(sample))]
        return Conversation(id=sample.id, messages=messages, metadata={"task": self.name})

    def select_shots(self, k: int, exclude: Sequence[Sample] = ()) -> list[Sample]:
        """``k`` examples from :meth:`shot_pool`, none of whose inputs is among ``exclude``."""
        if k <= 0:
            return []
        banned = {s.input.strip().lower() for s in exclude}
        pool = [s for s in self.shot_pool() if s.input.strip().lower() not in banned]
        if len(pool) < k:
            raise ConfigError(f"task {self.name!r} has {len(pool)} few-shot examples available, {k} asked for")
        return pool[:k]

    @abstractmethod
    def parse(self, output: str) -> Parsed:
        """Read a model's raw output."""

    @abstractmethod
    def score(self, sample: Sample, parsed: Parsed) -> dict[str, Any]:
        """Per-row scores (JSON values), kept in the samples file."""

    def row_outcome(self, scores: dict[str, Any], metric: str) -> bool | None:
        """Whether one row counts toward ``metric`` (a :attr:`row_scores` metric), or ``None`` when the task
        keeps no per-row value for it or the row does not apply."""
        key = self.row_scores.get(metric)
        value = None if key is None else scores.get(key)
        return None if value is None else bool(value)

    def reward(self, sample: Sample, parsed: Parsed, metric: str | None = None) -> float:
        """The one number a scored answer earns: what pair building, RL's ``task`` reward and the ladder use.

        With ``metric``, that key of :meth:`score` (a bool or number as it is, a dict of bools such
        as ``fields`` as its share of true values). Without it, the task's own reward; by default
        :func:`~agentladder.tasks.reward.scores_reward`: a ``reward`` score as it is, else
        ``(2 exact + field share + 0.5 valid) / 3.5`` over those present. A task with another idea
        of a good answer overrides this method (and calls it on ``super()`` when given a ``metric``).
        """
        scores = self.score(sample, parsed)
        if metric is not None:
            return metric_value(scores, metric, self.name)
        return scores_reward(scores)

    @abstractmethod
    def summarise(self, samples: Sequence[Sample], scores: Sequence[dict[str, Any]], *,
                  n_resamples: int = 1000, seed: int = 0) -> Summary:
        """The figures over all rows, each with its bootstrap interval."""
