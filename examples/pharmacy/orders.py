"""A seeded set of pharmacy orders with expected outcomes, built on the medication-directions test split.

About two orders in five put a drug the new prescription interacts with among the
patient's current medications; about a quarter of the prescriptions are dangerous
(their daily dose exceeds the formulary's illustrative limit). The expected outcome is
``flag`` with its reasons (``dose``, ``interaction``) or ``approve``.
"""

from __future__ import annotations

import random
from typing import Any

from agentladder.tasks.medication.formulary import formulary, interactions, is_dangerous
from agentladder.tasks.medication.generator import generate_rows

FLAG_SEVERITIES = ("contraindicated", "major", "moderate")


def partners(drug: str, severities=FLAG_SEVERITIES) -> list[str]:
    out = []
    for row in interactions():
        if row.severity in severities and drug in (row.drug_a, row.drug_b):
            out.append(row.drug_b if row.drug_a == drug else row.drug_a)
    return sorted(set(out) - {drug})


def make_orders(n: int, seed: int = 0, *, interaction_share: float = 0.4) -> list[dict[str, Any]]:
    """``n`` orders ``{"id", "patient", "prescription", "expected", "target"}``, reproducible from ``seed``."""
    rng = random.Random(f"pharmacy-orders:{seed}")
    rows = generate_rows("test", 6 * n + 50, seed)
    with_partners = [r for r in rows if partners(r["target"]["drug"])]
    others = [r for r in rows if not partners(r["target"]["drug"])]
    harmless = sorted(d for d in formulary())
    orders = []
    for i in range(n):
        interacting = rng.random() < interaction_share and with_partners
        row = (with_partners if interacting else others or with_partners).pop(0)
        drug = row["target"]["drug"]
        current = [m for m in rng.sample(harmless, 3) if m != drug and m not in partners(drug, ("contraindicated",
                   "major", "moderate", "minor"))][:rng.randint(0, 2)]
        if interacting:
            current.append(rng.choice(partners(drug)))
            rng.shuffle(current)
        t = row["target"]
        reasons = []
        if is_dangerous(drug, t["strength_mg"], t["dose_units"], t["doses_per_day"]):
            reasons.append("dose")
        if any(m in partners(drug) for m in current):
            reasons.append("interaction")
        orders.append({"id": f"order-{seed}-{i:03d}", "patient": {"current_medications": current},
                       "prescription": row["text"], "target": t,
                       "expected": {"decision": "flag" if reasons else "approve", "reasons": reasons}})
    return orders
