"""Guardrails: personal data masked, denied topics refused, prompt injection caught, in one pipeline.

.. code-block:: python

    from agentladder.agents.guard import Guard

    guard = Guard.from_yaml("guard.yaml")
    result = guard.check("Call Jane Roe on 415-555-0132", where="input", conversation_id="c1")
    result.text        # "Call <PERSON> on <PHONE>"
    result.blocked     # False; result.findings: type, span, score, rule, action

The agents runtime runs it on inputs, model answers and tool results (``Agent(..., guard=guard)``);
see ``docs/guardrails.md``.
"""

from agentladder.agents.guard.data import make_guard_rows, write_guard_rows
from agentladder.agents.guard.evaluate import LabelledRow, evaluate_file, read_labelled, scan_file
from agentladder.agents.guard.pipeline import Finding, Guard, GuardBlocked, GuardResult, GuardUsage
from agentladder.agents.guard.policy import (
    ENTITY_TYPES,
    DeniedTopic,
    GuardPolicy,
    InjectionPolicy,
    PiiPolicy,
    load_policy,
    parse_policy,
)

__all__ = [
    "ENTITY_TYPES",
    "DeniedTopic",
    "Finding",
    "Guard",
    "GuardBlocked",
    "GuardPolicy",
    "GuardResult",
    "GuardUsage",
    "InjectionPolicy",
    "LabelledRow",
    "PiiPolicy",
    "evaluate_file",
    "load_policy",
    "make_guard_rows",
    "parse_policy",
    "read_labelled",
    "scan_file",
    "write_guard_rows",
]
