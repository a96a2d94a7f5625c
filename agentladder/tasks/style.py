"""A prompt style: how a task's prompt and reference answer are written, as a value passed with the task.

The rows, the parser, the scorers and the reward stay the task's; a style changes
only the text a model reads (the system instruction, the casing of the user turn)
and the reference answer it is trained on (the answer's layout). A tuned model no
longer needs the long instruction a base model is prompted with, and every token
cut from the prompt is cut from each training step and each answer served.

Any caller composes one and passes it with any task, its own subclasses included::

    terse = get_task("medication-directions").styled(PromptStyle(instructions="JSON please."), name="terse")

A task may also name a few styles of its own (:attr:`~agentladder.tasks.Task.styles`),
chosen as ``NAME@STYLE`` wherever a task is named (``medication-directions@brief``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromptStyle:
    """How one task's prompt and reference answer are written (the default: the task's own)."""

    instructions: str | None = None
    """The system message shown instead of the task's own :meth:`~agentladder.tasks.Task.system_prompt`
    (``None``: the task's own; ``""``: no system message)."""
    lowercase_input: bool = False
    """Whether the user turn is the row's input lower-cased (for tasks where case carries nothing the
    answer needs); shots alike."""
    compact_answer: bool = False
    """Whether the reference answer is JSON without layout spaces (``{"a":1,"b":2}``), for tasks whose
    :meth:`~agentladder.tasks.Task.target_text` writes JSON; the parser reads either layout."""


__all__ = ["PromptStyle"]
