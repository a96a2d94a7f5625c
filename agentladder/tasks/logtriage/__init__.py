"""The built-in log-triage task: production log events, their priority rules, and its families of writing
(five for train, one each for validation and test)."""

from agentladder.tasks.logtriage.events import (
    CRITICAL,
    LABELS,
    SUPPORTING,
    Event,
    draw_event,
    priority,
)
from agentladder.tasks.logtriage.generator import generate_rows, split_of_event
from agentladder.tasks.logtriage.task import SYSTEM_PROMPT, LogTriage

__all__ = ["CRITICAL", "LABELS", "SUPPORTING", "SYSTEM_PROMPT", "Event", "LogTriage", "draw_event",
           "generate_rows", "priority", "split_of_event"]
