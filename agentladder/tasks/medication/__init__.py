"""The built-in medication-directions task: generator, formulary and scorers.

The formulary limits are illustrative for a synthetic benchmark, not clinical guidance.
"""

from agentladder.tasks.medication.formulary import (
    Drug,
    Interaction,
    formulary,
    interactions,
    is_dangerous,
)
from agentladder.tasks.medication.generator import generate_rows, split_of
from agentladder.tasks.medication.task import (
    BRIEF_PROMPT,
    FIELDS,
    SYSTEM_PROMPT,
    Directions,
    MedicationDirections,
    MedicationRow,
)

__all__ = [
    "BRIEF_PROMPT",
    "FIELDS",
    "SYSTEM_PROMPT",
    "Directions",
    "Drug",
    "Interaction",
    "MedicationDirections",
    "MedicationRow",
    "formulary",
    "generate_rows",
    "interactions",
    "is_dangerous",
    "split_of",
]
