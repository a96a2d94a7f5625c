"""The pharmacy's tools: the formulary, dose and interaction checks, and a batch dose audit that runs as a job.

Typed Python functions made tools with ``@tool``. In process they are what the
order-review workflow and agent call; the same file served over MCP is
``agentladder tools serve examples/pharmacy/tools.py --port 9000`` (``__jobs__``
names the tools that run as jobs: the batch dose audit). The formulary limits are
illustrative for a synthetic benchmark, not clinical guidance.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from agentladder.agents import tool
from agentladder.tasks.medication.formulary import daily_dose_mg, formulary, interactions

FLAG_SEVERITIES = ("contraindicated", "major", "moderate")


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


class DoseOrder(BaseModel):
    drug: str
    strength_mg: float
    dose_units: float
    doses_per_day: float


class AuditReport(BaseModel):
    checked: int
    over_limit: list[int]
    """Indexes of the orders whose daily dose exceeds the formulary's limit."""
    unknown: list[int]
    """Indexes of the orders whose drug the formulary does not list."""


@tool
def batch_dose_audit(orders: list[DoseOrder], seconds_per_order: float = 0.0) -> AuditReport:
    """Audit the daily dose of many orders against the formulary (slow: it runs as a job).

    Args:
        orders: the orders to audit, each with drug, strength_mg, dose_units and doses_per_day
        seconds_per_order: time each lookup takes (a stand-in for a slow formulary service)
    """
    over, unknown = [], []
    for i, given in enumerate(orders):
        order = DoseOrder.model_validate(given)  # a model when the runtime calls it, a dict when Python does
        time.sleep(seconds_per_order)
        check = check_dose(order.drug, order.strength_mg, order.dose_units, order.doses_per_day)
        if check.over_limit is None:
            unknown.append(i)
        elif check.over_limit:
            over.append(i)
    return AuditReport(checked=len(orders), over_limit=over, unknown=unknown)


__tools__ = [check_formulary, check_dose, check_interactions, batch_dose_audit]
"""What ``agentladder tools serve`` offers from this file."""
__jobs__ = [batch_dose_audit]
"""The tools whose calls run as jobs."""
