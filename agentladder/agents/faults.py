"""The ways a tool call can fail that the model should be told about.

Each is raised inside a tool call and comes back to the model as the call's result
(``error: ToolTimeout: ...``); the ``execute_tool`` span records it as an error with
the class name as ``error.type``. None of them stops a run.
"""

from __future__ import annotations


class ToolError(RuntimeError):
    """A tool call that failed for a reason the model should be told about (the text says what happened)."""


class ToolTimeout(ToolError):
    """A tool, or a job it started, that gave no result in time."""


class ToolConnectionError(ToolError):
    """A remote tool whose server could not be reached, or closed the connection during the call."""


class ToolSchemaError(ToolError):
    """A remote tool that declared a schema which is not valid JSON Schema."""


class ToolResultError(ToolError):
    """A result that does not match the tool's declared output schema, or is too large."""


class ToolFailed(ToolError):
    """A remote tool that ran and reported an error: the model sees the server's own words."""

    def __init__(self, message: str, error_type: str = "ToolFailed"):
        super().__init__(message)
        self.error_type = error_type


class JobFailed(ToolError):
    """A job that ended failed, cancelled or timed out."""


__all__ = ["JobFailed", "ToolConnectionError", "ToolError", "ToolFailed", "ToolResultError", "ToolSchemaError", "ToolTimeout"]
