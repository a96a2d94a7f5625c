"""The ``shifted`` split: prescription lines written in ways the train, validation and test splits never use.

The targets follow the task's rules exactly as in the other splits (the same drugs, strengths, doses,
frequencies, caps and durations, drawn the same way); only the writing differs, and every form below is
reserved for this split: the generator's other renderer never produces it (``tests/tasks`` checks this
on thousands of rows). A model that only learnt the training templates does worse here; the gap is a
measure of how far it generalises to prescriptions written by someone else.

Reserved forms (each shifted row uses a reserved frequency phrasing, and any of the others):

- frequency phrasings: ``1x daily``, ``2x/day``, ``two times per day``, ``thrice daily``, ``every 6 hrs``,
  UK sig codes ``od``, ``bd``, ``tds``, ``qds``, ``4-hourly``, ``q6 hours``, ``4-6 hourly``, ...
  (:data:`FREQUENCY_PHRASES`);
- as needed: ``as required``, ``when required``, ``if required``, ``when necessary``, ``p.r.n.``;
- routes: ``per os``, ``p.o.``, ``oral``; dose forms: ``tbl``/``tbls`` (tablets), ``cps`` (capsules);
- strengths: ``milligrams``, ``grams``, ``ug`` and ``µg``;
- durations: UK fractions ``10/7`` (days), ``2/52`` (weeks), ``1/12`` (months), ``for a course of N days``;
- daily maximums: ``up to N doses daily``, ``maximum of N tbls per day``, ``not more than N times daily``,
  ``up to N mg daily``;
- layouts: labelled fields (``Medication: ... | Dose: ... | Frequency: ...``), the frequency first
  (``bd: 1 tbl ...``), and an arrow (``amoxycillin 500 milligrams => 1 cps ...``);
- drug names: international and British names (``paracetamol``, ``frusemide``, ``amoxycillin``,
  ``cefalexin``, ``acetylsalicylic acid``) and brands the other splits never name (``Advil``, ``Nurofen``,
  ``Aleve``, ``Panadol``, ``Losec``, ``Lustral``, ...) (:data:`DRUG_NAMES`).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from agentladder.tasks.medication.formulary import fmt

if TYPE_CHECKING:
    from agentladder.tasks.medication.generator import Line

FREQUENCY_PHRASES: dict[str, tuple[str, ...]] = {
    "daily": ("1x daily", "1x/day", "one time per day", "each day", "od", "qday", "before bed", "at night"),
    "bid": ("2x daily", "2x/day", "two times per day", "twice per day", "every 12 hrs", "bd", "12-hourly",
            "q12 hours"),
    "tid": ("3x daily", "3x/day", "thrice daily", "three times per day", "every 8 hrs", "tds", "8-hourly",
            "q8 hours"),
    "qid": ("4x daily", "4x/day", "four times per day", "every 6 hrs", "qds", "6-hourly", "q6 hours"),
    "q4h": ("every 4 hrs", "4-hourly", "q4 hours", "every four hrs"),
    "q3h": ("every 3 hrs", "3-hourly", "q3 hours"),
    "q4-6h": ("every 4 to 6 hrs", "4-6 hourly", "q4 to 6 hours", "every 4-6 hrs"),
    "q6-8h": ("every 6 to 8 hrs", "6-8 hourly", "q6 to 8 hours"),
    "q8-12h": ("every 8 to 12 hrs", "8-12 hourly", "q8 to 12 hours"),
}
"""Reserved phrasings of each frequency (keys as the generator's ``FREQUENCIES``)."""

AS_NEEDED = ("as required", "when required", "if required", "when necessary", "p.r.n.")
ROUTES = ("per os", "p.o.", "oral")
FORMS = {"tablet": ("tbl", "tbls"), "capsule": ("cps", "cps")}
"""Reserved abbreviations of a dose form: ``(one, several)``."""
DRUG_NAMES: dict[str, tuple[str, ...]] = {
    "acetaminophen": ("paracetamol", "Panadol"), "ibuprofen": ("Advil", "Nurofen"), "naproxen": ("Aleve",),
    "furosemide": ("frusemide",), "amoxicillin": ("amoxycillin",), "cephalexin": ("cefalexin",),
    "aspirin": ("acetylsalicylic acid",), "lisinopril": ("Prinivil",), "levothyroxine": ("Levoxyl", "Euthyrox"),
    "warfarin": ("Jantoven",), "sertraline": ("Lustral",), "omeprazole": ("Losec",), "amlodipine": ("Istin",),
    "escitalopram": ("Cipralex",), "citalopram": ("Cipramil",), "cetirizine": ("Reactine",),
    "prednisone": ("Deltasone",), "diphenhydramine": ("Nytol",),
}
"""Names of a drug that only this split uses (international or British names, other brands)."""
LAYOUTS = ("fields", "frequency-first", "arrow")

RESERVED: tuple[str, ...] = tuple(sorted(
    {p for ps in FREQUENCY_PHRASES.values() for p in ps} | set(AS_NEEDED) | set(ROUTES)
    | {f for fs in FORMS.values() for f in fs} | {n.lower() for ns in DRUG_NAMES.values() for n in ns}
    | {"milligrams", "grams", "ug", "µg", "for a course of", "up to", "maximum of", "not more than", "=>",
       "medication:", "frequency:"}))
"""Every reserved form, lower case: none of them occurs (as whole words) in a train, validation or test row."""


def render_shifted(rng: random.Random, line: Line) -> str:
    """One prescription line for ``line`` in the shifted split's reserved forms (see the module docstring)."""
    name = _name(rng, line.drug.name)
    strength = _strength(rng, line.strength)
    form_one, form_many = FORMS[line.drug.form]
    form = form_many if line.units > 1 else form_one
    dose = f"{_units(rng, line.units)} {form}"
    route = rng.choice([*ROUTES, ""])
    freq = rng.choice(FREQUENCY_PHRASES[line.frequency.name])
    prn = rng.choice(AS_NEEDED) if line.as_needed else None
    extras = []
    if line.duration_days is not None:
        extras.append(_duration(rng, line.duration_days, line.duration_unit or "day"))
    if line.cap_doses is not None:
        extras.append(_cap(rng, line, form_many))
    layout = rng.choice(LAYOUTS)
    if layout == "fields":
        parts = [f"Medication: {name} {strength}", f"Dose: {dose}"] + ([f"Route: {route}"] if route else [])
        parts.append(f"Frequency: {freq}" + (f" {prn}" if prn else ""))
        parts += [f"Notes: {e}" for e in extras]
        text = rng.choice([" | ", "; ", " / "]).join(parts)
    else:
        if prn:
            extras.insert(0, prn)
        rng.shuffle(extras)
        tail = rng.choice([", ", " "]).join(extras)
        if layout == "frequency-first":
            text = f"{freq}: {dose} {name} {strength}" + (f" {route}" if route else "")
        else:
            text = f"{name} {strength} => {dose}" + (f" {route}" if route else "") + f" {freq}"
        text += f", {tail}" if tail else ""
    if rng.random() < 0.1:
        text = text.upper()
    return " ".join(text.split())


def _name(rng: random.Random, generic: str) -> str:
    own = DRUG_NAMES.get(generic)
    if own and rng.random() < 0.6:
        return rng.choice(own)
    return rng.choice([generic, generic.capitalize()])


def _strength(rng: random.Random, mg: float) -> str:
    if mg < 1 and float(round(mg * 1000, 6)).is_integer():
        return f"{fmt(round(mg * 1000, 6))} {rng.choice(['ug', 'µg'])}"
    if mg >= 1000 and float(mg / 1000).is_integer() and rng.random() < 0.5:
        return f"{fmt(mg / 1000)} grams"
    return f"{fmt(mg)} milligrams"


def _units(rng: random.Random, units: float) -> str:
    return rng.choice({1: ["1", "one"], 2: ["2", "two"], 3: ["3", "three"], 0.5: ["0.5", "1/2"],
                       1.5: ["1.5", "1 1/2"]}[units])


def _duration(rng: random.Random, days: int, unit: str) -> str:
    count = days // {"day": 1, "week": 7, "month": 30}[unit]
    fraction = {"day": f"{count}/7", "week": f"{count}/52", "month": f"{count}/12"}[unit]
    words = {"day": "days", "week": "weeks", "month": "months"}[unit]
    return rng.choice([f"for {fraction}", f"x {fraction}",
                       f"for a course of {count} {words[:-1] if count == 1 else words}"])


def _cap(rng: random.Random, line: Line, form_many: str) -> str:
    cap = line.cap_doses
    kinds = [f"up to {cap} doses daily", f"not more than {cap} times daily", f"maximum of {cap} doses per day"]
    tablets = (cap or 0) * line.units
    if float(tablets).is_integer() and line.units >= 1:
        kinds += [f"up to {int(tablets)} {form_many} daily", f"maximum of {int(tablets)} {form_many} per day"]
    mg = (cap or 0) * line.units * line.strength
    if float(mg).is_integer():
        kinds.append(f"up to {int(mg)} mg daily")
    return rng.choice(kinds)


__all__ = ["AS_NEEDED", "DRUG_NAMES", "FORMS", "FREQUENCY_PHRASES", "LAYOUTS", "RESERVED", "ROUTES",
           "render_shifted"]
