"""Pharmacy order review on the agents runtime: a specialist parses, tools check, a rule decides, a pharmacist reviews.

An order is ``{"id", "patient": {"current_medications": [...]}, "prescription": "<text>"}``.

    parse ──▶ formulary ─┐
          ├─▶ dose ──────┼──▶ decide  (approve | flag, with reasons)
          └─▶ interactions┘

- ``parse``: the specialist model (the medication-directions prompt, the task's
  strict field types) turns the prescription into six fields. An answer that stays
  invalid after one correction, or names a drug or strength the formulary does not
  list (the model is unsure or wrong), escalates to a pharmacist: the run pauses and
  resumes with the pharmacist's corrected parse.
- ``formulary``, ``dose``, ``interactions``: typed tools over the packaged formulary
  and interaction table, run side by side.
- ``decide``: flags a daily dose over the formulary's limit and any interaction of
  moderate or greater severity; approves otherwise.

The formulary limits are illustrative for a synthetic benchmark, not clinical guidance.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from tools import (
    FLAG_SEVERITIES,
    DoseCheck,
    FormularyCheck,
    Interaction,
    batch_dose_audit,
    check_dose,
    check_formulary,
    check_interactions,
)

from agentladder.agents import Agent, Tool, Workflow
from agentladder.tasks.medication.task import (
    SYSTEM_PROMPT,
    Directions,
    _shot_pool,
    target_dict,
)

MedicationDirection = Directions
"""The parse: drug, strength_mg, dose_units, doses_per_day, as_needed, duration_days (strictly typed)."""

NOTE = "The formulary limits are illustrative for a synthetic benchmark, not clinical guidance."


class Patient(BaseModel):
    current_medications: list[str] = Field(default_factory=list)


class Order(BaseModel):
    id: str
    patient: Patient = Field(default_factory=Patient)
    prescription: str


class Decision(BaseModel):
    decision: Literal["approve", "flag", "escalate"]
    reasons: list[str] = Field(default_factory=list)


def unsure(parse: Directions) -> str | None:
    """Why a pharmacist should look at a parse the tools cannot trust, or None."""
    check = check_formulary(parse.drug, parse.strength_mg)
    if not check.known:
        return f"drug {parse.drug!r} is not in the formulary"
    if not check.listed_strength:
        return f"{parse.strength_mg:g} mg is not a listed strength of {check.drug}"
    return None


def make_parser(model: Any, *, shots: int = 0, max_new_tokens: int = 96) -> Agent:
    """The specialist: the medication-directions prompt (what the task's SFT data trains), strict output."""
    examples = [(s.input, target_dict(s.target)) for s in _shot_pool()[:shots]]
    return Agent(model, system=SYSTEM_PROMPT, output=MedicationDirection, output_instructions=False,
                 examples=examples, max_retries=1, escalate_invalid=True, review_if=unsure,
                 max_new_tokens=max_new_tokens, name="parser")


def decide(checks: dict[str, Any]) -> Decision:
    """Flag a dose over the limit and any interaction of moderate or greater severity; approve otherwise.

    The checks arrive as the tools' models (in process) or as their JSON (from an MCP or signed tool).
    """
    reasons = []
    dose = DoseCheck.model_validate(checks["dose"])
    if dose.over_limit:
        reasons.append(f"dose: {dose.daily_mg:g} mg/day exceeds the {dose.max_daily_mg:g} mg limit")
    for found in (Interaction.model_validate(f) for f in checks["interactions"]):
        if found.severity in FLAG_SEVERITIES:
            reasons.append(f"interaction: {found.drug} + {found.other} ({found.severity}): {found.effect}")
    return Decision(decision="flag" if reasons else "approve", reasons=reasons)


TOOL_NAMES = ("check_formulary", "check_dose", "check_interactions")


def pick_tools(tools: list[Tool] | None) -> dict[str, Tool]:
    """The three checks by name: the in-process ones, or the same names from ``tools`` (MCP, signed)."""
    local = {"check_formulary": check_formulary, "check_dose": check_dose, "check_interactions": check_interactions}
    if tools is None:
        return local
    given = {t.name: t for t in tools}
    missing = [n for n in TOOL_NAMES if n not in given]
    if missing:
        raise ValueError(f"the tools given lack {', '.join(missing)} (they have {', '.join(given)})")
    return {n: given[n] for n in TOOL_NAMES}


def build_review(model: Any, *, shots: int = 0, max_new_tokens: int = 96, tools: list[Tool] | None = None) -> Workflow:
    """The order-review workflow with ``model`` (a provider or a spec: alias, run folder, openai:...) as the parser.

    ``tools`` replaces the in-process checks with tools of the same names (``mcp_tools(...)``, ``signed_tools(...)``).
    """
    parser = make_parser(model, shots=shots, max_new_tokens=max_new_tokens)
    checks = pick_tools(tools)

    async def parse(order: Any) -> Directions:
        order = Order.model_validate(order)
        return (await parser.arun(order.prescription)).output

    async def interactions_step(parse: Directions, ctx) -> list[Interaction]:
        order = Order.model_validate(ctx.input)
        result = await checks["check_interactions"].call(
            {"drug": parse.drug, "current_medications": order.patient.current_medications})
        if result.error is not None:
            raise RuntimeError(f"check_interactions: {result.error}")
        return [Interaction.model_validate(f) for f in result.value]

    return (Workflow("order-review")
            .step("parse", parse)
            .step("formulary", checks["check_formulary"], after="parse")
            .step("dose", checks["check_dose"], after="parse")
            .step("interactions", interactions_step, after="parse")
            .step("decide", decide, after=["formulary", "dose", "interactions"]))


REVIEWER_PROMPT = ("You review pharmacy orders. Check the prescription's daily dose and its interactions with the "
                   "patient's current medications with the tools, then answer with the decision.")


def make_reviewer(model: Any, *, tools: list[Tool] | None = None, max_new_tokens: int = 256) -> Agent:
    """The order-review agent: it calls the checks itself (in process, or the same tools over MCP) and decides."""
    return Agent(model, system=REVIEWER_PROMPT, tools=list(pick_tools(tools).values()), output=Decision,
                 name="order_reviewer", max_new_tokens=max_new_tokens)


__all__ = ["Decision", "DoseCheck", "FormularyCheck", "Interaction", "MedicationDirection", "Order", "Patient",
           "batch_dose_audit", "build_review", "check_dose", "check_formulary", "check_interactions", "decide",
           "make_parser", "make_reviewer", "pick_tools"]
