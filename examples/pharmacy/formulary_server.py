"""The pharmacy's formulary and interaction checks as a stand-alone MCP server, written with the official SDK.

    python -m formulary_server                     # stdio (what `mcp_tools("python -m formulary_server")` starts)
    python -m formulary_server --http --port 9000  # streamable HTTP at http://127.0.0.1:9000/mcp

It uses only the ``mcp`` SDK's ``MCPServer`` and the packaged formulary data, not
agentladder's runtime: it stands for a server somebody else wrote. Its answers are
the same as the in-process tools' in ``tools.py``. The formulary limits are
illustrative for a synthetic benchmark, not clinical guidance.
"""

from __future__ import annotations

import argparse

from mcp.server import MCPServer
from pydantic import BaseModel, Field

from agentladder.tasks.medication.formulary import daily_dose_mg, formulary, interactions

server = MCPServer("formulary", instructions="Formulary, dose and interaction checks for pharmacy orders.")


class FormularyCheck(BaseModel):
    drug: str
    known: bool
    listed_strength: bool
    strengths_mg: list[float] = Field(default_factory=list)


class DoseCheck(BaseModel):
    daily_mg: float
    max_daily_mg: float | None
    over_limit: bool | None


class Interaction(BaseModel):
    drug: str
    other: str
    severity: str
    effect: str


@server.tool()
def check_formulary(drug: str, strength_mg: float) -> FormularyCheck:
    """Look a drug up in the formulary and say whether the strength is one it lists."""
    entry = formulary().get(drug.strip().lower())
    if entry is None:
        return FormularyCheck(drug=drug, known=False, listed_strength=False)
    listed = any(abs(s - strength_mg) <= 1e-6 * max(s, 1.0) for s in entry.strengths_mg)
    return FormularyCheck(drug=entry.name, known=True, listed_strength=listed, strengths_mg=list(entry.strengths_mg))


@server.tool()
def check_dose(drug: str, strength_mg: float, dose_units: float, doses_per_day: float) -> DoseCheck:
    """Compute the most a direction allows in 24 hours and compare it with the formulary's daily limit."""
    daily = daily_dose_mg(strength_mg, dose_units, doses_per_day)
    entry = formulary().get(drug.strip().lower())
    if entry is None:
        return DoseCheck(daily_mg=daily, max_daily_mg=None, over_limit=None)
    return DoseCheck(daily_mg=daily, max_daily_mg=entry.max_daily_mg,
                     over_limit=daily > entry.max_daily_mg * (1 + 1e-9))


@server.tool()
def check_interactions(drug: str, current_medications: list[str]) -> list[Interaction]:
    """Interactions between a drug and the patient's current medications, from the interaction table."""
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    args = ap.parse_args()
    if args.http:
        server.run("streamable-http", host=args.host, port=args.port)
    else:
        server.run()


if __name__ == "__main__":
    main()
