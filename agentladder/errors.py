"""The project's error types: expected failures a user can fix, each said in one line.

The command line shows an :class:`AgentladderError` as one ``error:`` line and
anything else as a bug, with its traceback. Each type also derives from the
built-in exception it refines, so ``except ValueError`` (or ``FileNotFoundError``,
``FileExistsError``) still catches it.

:func:`data_error` and :func:`config_error` turn pydantic's ``ValidationError`` into
one line that names the file, the line and the field (``train.jsonl:12: messages[1].role: ...``).

This module imports nothing of agentladder's: every layer may raise these.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence

from pydantic import ValidationError


class AgentladderError(Exception):
    """An expected failure (bad input, a missing file, an unreachable endpoint), said in one line."""


class ConfigError(AgentladderError, ValueError):
    """Settings that cannot work: an unknown option value, a contradiction, a missing required setting."""


class DataError(AgentladderError, ValueError):
    """A row (or a settings file) that does not fit its schema, located by file, line and field."""

    def __init__(self, path: str | os.PathLike | None, line: int | None, field: str | None, message: str):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.message = message
        where = ":".join(str(p) for p in (self.path, self.line) if p is not None)
        text = f"{where}: " if where else ""
        text += f"{field}: " if field else ""
        super().__init__(text + message)


class MissingFileError(AgentladderError, FileNotFoundError):
    """A file or folder the user named is not there: a settings file, a trace store, a run to resume."""


class OutputExistsError(AgentladderError, FileExistsError):
    """The output folder already holds work that would be overwritten: a run, an export."""


# -- pydantic errors as one line ----------------------------------------------------------------
_INTERNAL = ("function-", "tagged-union", "__root__")
"""Parts of pydantic's error location that name its validators and unions, not fields."""


def field_path(loc: Sequence[str | int]) -> str:
    """``messages[1].role`` from a location ``("messages", 1, "role")``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def first_error(err: ValidationError, skip: Collection[str] = ()) -> tuple[list[str | int], str]:
    """The location and message of the first error in ``err``.

    The location leaves out pydantic's validator and union tags (and the ``skip`` parts:
    a discriminated union's tag values); an exception raised inside a validator that has a
    ``loc`` attribute (a list) extends the location, so a model-level check can point at a field.
    """
    first = err.errors()[0]
    loc: list[str | int] = [p for p in first["loc"]
                            if not (isinstance(p, str) and (p.startswith(_INTERNAL) or p in skip))]
    raised = (first.get("ctx") or {}).get("error")
    loc += list(getattr(raised, "loc", None) or [])
    return loc, first["msg"].removeprefix("Value error, ")


def data_error(err: ValidationError, path: str | os.PathLike | None = None,
               line_of: int | Callable[[list[str | int]], int | None] | None = None, *,
               skip: Collection[str] = ()) -> DataError:
    """``err``'s first error as a :class:`DataError` naming ``path``, the line and the field.

    ``line_of`` is the line of a JSONL row, or a function from the error's location to its
    line (for YAML, ``lambda loc: yaml_line(text, loc)`` with :func:`agentladder.data.io.yaml_line`).
    """
    loc, message = first_error(err, skip)
    line = line_of(loc) if callable(line_of) else line_of
    return DataError(path, line, field_path(loc) or None, message)


def config_error(err: ValidationError, *, skip: Collection[str] = ()) -> ConfigError:
    """``err``'s first error as a :class:`ConfigError`: ``field: message`` (settings given as options)."""
    loc, message = first_error(err, skip)
    field = field_path(loc)
    return ConfigError(f"{field}: {message}" if field else message)


__all__ = [
    "AgentladderError",
    "ConfigError",
    "DataError",
    "MissingFileError",
    "OutputExistsError",
    "config_error",
    "data_error",
    "field_path",
    "first_error",
]
