"""Built-in tasks, registered by name when :mod:`agentladder.tasks` is imported."""

from agentladder.tasks.logtriage import LogTriage
from agentladder.tasks.medication import MedicationDirections
from agentladder.tasks.registry import register_task
from agentladder.tasks.text import TextTask

register_task(MedicationDirections())
register_task(TextTask())
register_task(LogTriage())
