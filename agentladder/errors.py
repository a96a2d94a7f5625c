"""The project's error types: expected failures a user can fix, each said in one line.

The command line shows an :class:`AgentladderError` as one ``error:`` line and
anything else as a bug, with its traceback. Each type also derives from the
built-in exception it refines, so ``except ValueError`` still catches bad input.
This module imports nothing of agentladder's: every layer may raise these.
"""

from __future__ import annotations

import os


class AgentladderError(Exception):
    """An expected failure (bad input, a missing file, an unreachable endpoint), said in one line."""


class ConfigError(AgentladderError, ValueError):
    """Settings that cannot work: an unknown option value, a contradiction, a missing required setting."""


class DataError(AgentladderError, ValueError):
    """A row that does not fit its schema, located by file, line and field."""

    def __init__(self, path: str | os.PathLike | None, line: int | None, field: str | None, message: str):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.message = message
        where = ":".join(str(p) for p in (self.path, self.line) if p is not None)
        text = f"{where}: " if where else ""
        text += f"{field}: " if field else ""
        super().__init__(text + message)


__all__ = ["AgentladderError", "ConfigError", "DataError"]
