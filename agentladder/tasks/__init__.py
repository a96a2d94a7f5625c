"""Tasks: a dataset, a prompt, a parser, scorers and a reward, found by name.

A :class:`Task` is what every rung is measured and rewarded on: evaluation
scores its rows, pair sampling and RL grade answers with its :meth:`~Task.reward`,
and the ladder gates on its metrics. How its prompt is written is a :class:`PromptStyle`
passed with the task (:meth:`Task.styled`). The built-in tasks are registered on import.
"""

import agentladder.tasks.builtin  # noqa: E402,F401,I001  (registers the built-in tasks)
from agentladder.tasks.classification import ClassificationTask, load_labelled
from agentladder.tasks.make import make_data, sft_conversations, write_data
from agentladder.tasks.metrics import (
    Metric,
    accuracy,
    bootstrap_ci,
    confusion,
    macro_f1,
    mean_metric,
    numbers_equal,
    precision_recall_f1,
    token_f1,
)
from agentladder.tasks.parsing import extract_json_object
from agentladder.tasks.registry import get_task, list_tasks, register_task
from agentladder.tasks.style import PromptStyle
from agentladder.tasks.task import Parsed, Sample, Summary, Task

__all__ = [
    "ClassificationTask",
    "Metric",
    "Parsed",
    "PromptStyle",
    "Sample",
    "Summary",
    "Task",
    "accuracy",
    "bootstrap_ci",
    "confusion",
    "extract_json_object",
    "get_task",
    "list_tasks",
    "load_labelled",
    "macro_f1",
    "make_data",
    "mean_metric",
    "numbers_equal",
    "precision_recall_f1",
    "register_task",
    "sft_conversations",
    "token_f1",
    "write_data",
]
