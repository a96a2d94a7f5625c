"""Prompt styles: a value passed with any task, and the task's named styles found as NAME@STYLE."""

import json
from dataclasses import FrozenInstanceError

import pytest

from agentladder.data.schema import Message
from agentladder.errors import ConfigError
from agentladder.tasks import Parsed, PromptStyle, Sample, Task, get_task
from agentladder.tasks.medication import BRIEF_PROMPT, SYSTEM_PROMPT

TASK = get_task("medication-directions")


class _Echo(Task):
    """A user's own task with no named styles: its prompt is its instruction and the input."""

    name = "echo"

    def load(self, path):
        raise NotImplementedError

    def system_prompt(self):
        return "Repeat the line."

    def parse(self, output):
        return Parsed(output, True)

    def score(self, sample, parsed):
        return {"exact": parsed.value == sample.target}

    def summarise(self, samples, scores, *, n_resamples=1000, seed=0):
        raise NotImplementedError


def test_a_style_is_a_frozen_value_whose_default_is_the_tasks_own_prompt():
    style = PromptStyle()
    assert (style.instructions, style.lowercase_input, style.compact_answer) == (None, False, False)
    with pytest.raises(FrozenInstanceError):
        style.lowercase_input = True  # type: ignore[misc]
    assert TASK.style == style and get_task("text").style == style


def test_any_task_takes_a_style_built_by_its_caller():
    task, sample = _Echo(), Sample("1", "Take TWO Tablets", "x")
    assert task.prompt(sample) == [Message(role="system", content="Repeat the line."),
                                   Message(role="user", content="Take TWO Tablets")]
    lower = task.styled(PromptStyle(instructions="Echo.", lowercase_input=True), name="short")
    assert lower.name == "echo@short" and task.name == "echo"  # a copy: the task itself is unchanged
    assert lower.prompt(sample) == [Message(role="system", content="Echo."),
                                    Message(role="user", content="take two tablets")]
    assert task.styled(PromptStyle(instructions="")).prompt(sample) == [Message(role="user", content="Take TWO Tablets")]
    assert task.styled(PromptStyle(lowercase_input=True)).name == "echo"  # unnamed: the task's name
    with pytest.raises(ConfigError, match=r"task 'echo' has no instructions 'brief' \(it has: none\)"):
        task.styled("brief")


def test_named_styles_are_the_same_values_a_caller_can_build():
    row = next(r for r in TASK.make("test", 50) if r.input != r.input.lower())
    built = TASK.styled(PromptStyle(instructions=BRIEF_PROMPT, lowercase_input=True, compact_answer=True),
                        name="brief-lower")
    named = get_task("medication-directions@brief-lower")
    assert built.name == named.name and built.style == named.style
    assert built.to_sft(row) == named.to_sft(row)
    assert TASK.styled("brief").prompt(row) == get_task("medication-directions@brief").prompt(row)
    # Restyling a styled task starts from the task, not from the style it had.
    again = named.styled("brief")
    assert again.name == "medication-directions@brief" and again.prompt(row)[-1].content == row.input
    # Compact answers on their own, with the task's full instruction.
    compact = TASK.styled(PromptStyle(compact_answer=True))
    assert compact.prompt(row)[0].content == SYSTEM_PROMPT
    assert compact.target_text(row) == json.dumps(row.target, separators=(",", ":"))
