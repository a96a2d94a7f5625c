"""The task registry: tasks found by name, by ``module:attribute``, or ``NAME@VARIANT``.

The built-in tasks (:mod:`agentladder.tasks.builtin`) are registered when the
``agentladder.tasks`` package is imported, so every name is known here.
"""

from __future__ import annotations

import importlib

from agentladder.errors import ConfigError
from agentladder.tasks.task import Task

_REGISTRY: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Make ``task`` findable by its name; returns it (usable on an instance at import time)."""
    _REGISTRY[task.name] = task
    return task


def list_tasks() -> list[str]:
    """Names of the registered tasks (the built-in ones included)."""
    return sorted(_REGISTRY)


def get_task(name: str | Task) -> Task:
    """A task by registered name, by ``module:attribute``, or the task itself; ``@VARIANT`` picks its instructions."""
    if isinstance(name, Task):
        return name
    base, at, variant = name.rpartition("@")
    if at:
        return get_task(base).with_instructions(variant)
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"cannot load task {name!r}: {err}") from None
        task = found() if isinstance(found, type) else found
        if not isinstance(task, Task):
            raise ConfigError(f"{name!r} is not an agentladder Task")
        return task
    raise ConfigError(f"no task {name!r}: choose one of {', '.join(sorted(_REGISTRY))} (or module:attribute)")
