"""The reference formulary and interaction table shipped with the package.

Copied from the project's shared data into ``agentladder/resources/medication``.
The limits are illustrative for a synthetic benchmark, not clinical guidance.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Drug:
    """One formulary row."""

    name: str
    """Generic name, lower case."""
    form: str
    """``tablet`` or ``capsule``."""
    strengths_mg: tuple[float, ...]
    """Strengths of one unit, in mg."""
    route: str
    max_daily_mg: float
    """Illustrative daily limit (not clinical guidance)."""
    drug_class: str


@dataclass(frozen=True)
class Interaction:
    drug_a: str
    drug_b: str
    severity: str
    effect: str


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("agentladder").joinpath("resources", "medication", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@functools.cache
def formulary() -> dict[str, Drug]:
    """The formulary by generic name."""
    out = {}
    for row in _read("formulary.csv"):
        out[row["drug"]] = Drug(
            name=row["drug"],
            form=row["form"],
            strengths_mg=tuple(float(s) for s in row["strengths_mg"].split(";")),
            route=row["route"],
            max_daily_mg=float(row["max_daily_mg"]),
            drug_class=row["drug_class"],
        )
    return out


@functools.cache
def interactions() -> tuple[Interaction, ...]:
    """The interaction table (each pair once, unordered)."""
    return tuple(Interaction(r["drug_a"], r["drug_b"], r["severity"], r["effect"]) for r in _read("interactions.csv"))


def number(x: float) -> int | float:
    """A JSON number as people write it: 500, not 500.0."""
    return int(x) if float(x).is_integer() else float(x)


def fmt(x: float) -> str:
    return str(number(x))


def daily_dose_mg(strength_mg: float, dose_units: float, doses_per_day: float) -> float:
    """``strength_mg x dose_units x doses_per_day``: the most the direction allows in 24 h."""
    return strength_mg * dose_units * doses_per_day


def is_dangerous(drug: str, strength_mg: float, dose_units: float, doses_per_day: float) -> bool | None:
    """Whether the daily dose exceeds the drug's ``max_daily_mg``; ``None`` for a drug not in the formulary.

    The drug is looked up as a pipeline would, ignoring case and surrounding spaces.
    A relative margin of 1e-9 keeps float noise (``0.1 x 3``) from tipping a dose at the limit.
    """
    entry = formulary().get(drug.strip().lower())
    if entry is None:
        return None
    return daily_dose_mg(strength_mg, dose_units, doses_per_day) > entry.max_daily_mg * (1 + 1e-9)
