"""Built-in tasks, registered by name on import."""

from agentladder.evals.task import register_task
from agentladder.evals.tasks.medication import MedicationDirections
from agentladder.evals.tasks.text import TextTask

register_task(MedicationDirections())
register_task(TextTask())
