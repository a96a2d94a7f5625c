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

from agentladder.agents import Agent, Tool, Workflow, tool
from agentladder.tasks.medication.formulary import daily_dose_mg, formulary, interactions
from agentladder.tasks.medication.task import (
    SYSTEM_PROMPT,
    Directions,
    _shot_pool,
    target_dict,
)

MedicationDirection = Directions
"""The parse: drug, strength_mg, dose_units, doses_per_day, as_needed, duration_days (strictly typed)."""

FLAG_SEVERITIES = ("contraindicated", "major", "moderate")
NOTE = "The formulary limits are illustrative for a synthetic benchmark, not clinical guidance."


class Patient(BaseModel):
    current_medications: list[str] = Field(default_factory=list)


class Order(BaseModel):
    id: str
    patient: Patient = Field(default_factory=Patient)
    prescription: str


class FormularyCheck(BaseModel):
    drug: str
    known: bool
    listed_strength: bool
    strengths_mg: list[float] = Field(default_factory=list)


class DoseCheck(BaseModel):
    daily_mg: float
    max_daily_mg: float | None
    over_limit: bool | None
    """None when the drug is not in the formulary."""


class Interaction(BaseModel):
    drug: str
    other: str
    severity: str
    effect: str


class Decision(BaseModel):
    decision: Literal["approve", "flag", "escalate"]
    reasons: list[str] = Field(default_factory=list)


@tool
def check_formulary(drug: str, strength_mg: float) -> FormularyCheck:
    """Look a drug up in the formulary and say whether the strength is one it lists.

    Args:
        drug: generic name, lower case
        strength_mg: strength of one tablet or capsule in mg
    """
    entry = formulary().get(drug.strip().lower())
    if entry is None:
        return FormularyCheck(drug=drug, known=False, listed_strength=False)
    listed = any(abs(s - strength_mg) <= 1e-6 * max(s, 1.0) for s in entry.strengths_mg)
    return FormularyCheck(drug=entry.name, known=True, listed_strength=listed, strengths_mg=list(entry.strengths_mg))


@tool
def check_dose(drug: str, strength_mg: float, dose_units: float, doses_per_day: float) -> DoseCheck:
    """Compute the most a direction allows in 24 hours and compare it with the formulary's daily limit.

    Args:
        drug: generic name, lower case
        strength_mg: strength of one unit in mg
        dose_units: units per dose
        doses_per_day: the most doses in 24 hours
    """
    daily = daily_dose_mg(strength_mg, dose_units, doses_per_day)
    entry = formulary().get(drug.strip().lower())
    if entry is None:
        return DoseCheck(daily_mg=daily, max_daily_mg=None, over_limit=None)
    return DoseCheck(daily_mg=daily, max_daily_mg=entry.max_daily_mg,
                     over_limit=daily > entry.max_daily_mg * (1 + 1e-9))


@tool
def check_interactions(drug: str, current_medications: list[str]) -> list[Interaction]:
    """Interactions between a drug and the patient's current medications, from the interaction table.

    Args:
        drug: generic name of the new drug
        current_medications: generic names the patient already takes
    """
    new = drug.strip().lower()
    current = {m.strip().lower() for m in current_medications}
    found = []
    for row in interactions():
        pair = {row.drug_a, row.drug_b}
        if new in pair:
            other = (pair - {new}).pop() if len(pair) == 2 else new
            if other in current:
                found.append(Interaction(drug=new, other=other, severity=row.severity, effect=row.effect))
    return found


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
    """Flag a dose over the limit and any interaction of moderate or greater severity; approve otherwise."""
    reasons = []
    dose: DoseCheck = checks["dose"]
    if dose.over_limit:
        reasons.append(f"dose: {dose.daily_mg:g} mg/day exceeds the {dose.max_daily_mg:g} mg limit")
    for found in checks["interactions"]:
        if found.severity in FLAG_SEVERITIES:
            reasons.append(f"interaction: {found.drug} + {found.other} ({found.severity}): {found.effect}")
    return Decision(decision="flag" if reasons else "approve", reasons=reasons)


def build_review(model: Any, *, shots: int = 0, max_new_tokens: int = 96) -> Workflow:
    """The order-review workflow with ``model`` (a provider or a spec: alias, run folder, openai:...) as the parser."""
    parser = make_parser(model, shots=shots, max_new_tokens=max_new_tokens)

    async def parse(order: Any) -> Directions:
        order = Order.model_validate(order)
        return (await parser.arun(order.prescription)).output

    async def interactions_step(parse: Directions, ctx) -> list[Interaction]:
        order = Order.model_validate(ctx.input)
        return check_interactions(parse.drug, order.patient.current_medications)

    return (Workflow("order-review")
            .step("parse", parse)
            .step("formulary", check_formulary, after="parse")
            .step("dose", check_dose, after="parse")
            .step("interactions", interactions_step, after="parse")
            .step("decide", decide, after=["formulary", "dose", "interactions"]))


__all__ = ["Decision", "DoseCheck", "FormularyCheck", "Interaction", "MedicationDirection", "Order", "Patient",
           "Tool", "build_review", "check_dose", "check_formulary", "check_interactions", "decide", "make_parser"]
