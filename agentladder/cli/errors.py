"""How a command fails: the project's own errors as one ``error:`` line, anything else as a bug.

An :class:`~agentladder.errors.AgentladderError` (bad settings, a bad row, a missing file, an
existing run, a model that does not load, an endpoint that refuses) is something the user
can fix: it prints as one line and exits with 1. Every other exception is a bug in
agentladder and keeps its traceback. Ctrl-C exits with 130 and says how to resume.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from agentladder.errors import AgentladderError

F = TypeVar("F", bound=Callable[..., Any])

stdout = Console()
"""Results: tables and reports."""
stderr = Console(stderr=True)
"""Progress, ``done`` lines and errors (standard error)."""


def friendly_errors(fn: F) -> F:
    """Run the command ``fn``; show an :class:`AgentladderError` as one line, let any other exception through."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AgentladderError as e:
            stderr.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            stderr.print("[yellow]interrupted[/]: finished checkpoints are kept; rerun with --resume to continue")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


__all__ = ["friendly_errors", "stderr", "stdout"]
