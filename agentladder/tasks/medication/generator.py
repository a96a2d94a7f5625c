"""A seeded generator of realistic prescription lines and their ground truth.

Each line is drawn from the formulary (drug, strength, form) and a direction
(units per dose, frequency, as needed, a cap, a duration), then written the
way prescribers write: prose ("take 1 tablet by mouth twice daily for 10
days") or sig shorthand ("1 tab PO BID x10d"), generic, brand or abbreviated
names (HCTZ, APAP), salts (HCl, sodium), mcg or g strengths, the drug before
or after the direction, caps stated in tablets, doses or mg, dispensing
notes and refills as distractors, and any casing. About a quarter of the
rows are dangerous: their daily dose exceeds the formulary's (illustrative)
``max_daily_mg``, many of them by a small margin.

Splits never share a row: a line's split is fixed by a hash of its
lower-cased, space-normalised text (80 % train, 10 % validation, 10 % test),
and each split keeps only the lines that hash to it. So ``--n`` and
``--seed`` change which rows a split holds, never which split a row can be in.

A fifth split, ``shifted``, draws its lines the same way but writes them only in
forms the other splits never use (held out by construction, not by hash):
reserved frequency phrasings (``2x/day``, ``bd``, ``tds``, ``every 6 hrs``,
``4-hourly``), as-needed and route wordings (``as required``, ``per os``),
abbreviations (``tbl``, ``cps``, ``ug``), durations (``10/7``, ``2/52``),
daily maximums (``up to 4 doses daily``), layouts (labelled fields, the
frequency first, an arrow) and drug names (``paracetamol``, ``frusemide``,
``Advil``, ``Losec``). The full list is in
:mod:`agentladder.tasks.medication.shifted`; the targets follow the same rules.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from agentladder.errors import ConfigError
from agentladder.tasks.medication.formulary import Drug, fmt, formulary, is_dangerous, number
from agentladder.tasks.medication.shifted import render_shifted

SPLITS = {"train": range(0, 8), "validation": range(8, 9), "test": range(9, 10)}
SHIFTED = "shifted"
"""The split rendered in forms no other split uses (:mod:`agentladder.tasks.medication.shifted`)."""
DANGEROUS_SHARE = 0.25

PRN_CLASSES = ("analgesic", "nsaid", "opioid", "muscle_relaxant", "triptan", "antiemetic", "antihistamine")
COURSE_CLASSES = ("antibiotic", "antiviral", "antifungal", "corticosteroid")

INDICATIONS = {
    "analgesic": ["pain", "fever", "headache", "pain or fever"],
    "nsaid": ["pain", "inflammation", "joint pain"],
    "opioid": ["severe pain", "pain"],
    "muscle_relaxant": ["muscle spasm", "back spasms"],
    "triptan": ["migraine", "migraine headache"],
    "antiemetic": ["nausea", "nausea/vomiting"],
    "antihistamine": ["allergies", "itching", "sleep"],
    "antidepressant": ["sleep", "insomnia"],
}
PURPOSES = {
    "antibiotic": ["infection", "UTI"], "statin": ["cholesterol"], "ace_inhibitor": ["blood pressure", "BP"],
    "arb": ["blood pressure", "BP"], "calcium_channel_blocker": ["blood pressure"], "beta_blocker": ["BP", "heart rate"],
    "diuretic": ["swelling", "fluid"], "antidiabetic": ["diabetes", "blood sugar"], "ssri": ["depression", "anxiety"],
    "proton_pump_inhibitor": ["reflux", "GERD"], "h2_blocker": ["heartburn"], "thyroid": ["thyroid"],
    "xanthine_oxidase_inhibitor": ["gout"], "alpha_blocker": ["BPH", "urinary symptoms"],
}
BRANDS = {
    "acetaminophen": "Tylenol", "ibuprofen": "Motrin", "naproxen": "Naprosyn", "meloxicam": "Mobic",
    "tramadol": "Ultram", "cyclobenzaprine": "Flexeril", "gabapentin": "Neurontin", "sumatriptan": "Imitrex",
    "amoxicillin": "Amoxil", "cephalexin": "Keflex", "azithromycin": "Zithromax", "ciprofloxacin": "Cipro",
    "doxycycline": "Vibramycin", "nitrofurantoin": "Macrobid", "clarithromycin": "Biaxin", "valacyclovir": "Valtrex",
    "fluconazole": "Diflucan", "metformin": "Glucophage", "glipizide": "Glucotrol", "lisinopril": "Zestril",
    "losartan": "Cozaar", "amlodipine": "Norvasc", "metoprolol": "Lopressor", "carvedilol": "Coreg",
    "furosemide": "Lasix", "spironolactone": "Aldactone", "atorvastatin": "Lipitor", "simvastatin": "Zocor",
    "clopidogrel": "Plavix", "warfarin": "Coumadin", "sertraline": "Zoloft", "fluoxetine": "Prozac",
    "citalopram": "Celexa", "escitalopram": "Lexapro", "trazodone": "Desyrel", "omeprazole": "Prilosec",
    "pantoprazole": "Protonix", "famotidine": "Pepcid", "ondansetron": "Zofran", "cetirizine": "Zyrtec",
    "loratadine": "Claritin", "diphenhydramine": "Benadryl", "montelukast": "Singulair", "allopurinol": "Zyloprim",
    "tamsulosin": "Flomax", "levothyroxine": "Synthroid", "hydrochlorothiazide": "Microzide",
}
ABBREVIATIONS = {"hydrochlorothiazide": "HCTZ", "acetaminophen": "APAP", "aspirin": "ASA"}
SALTS = {
    "tramadol": "HCl", "metformin": "HCl", "sertraline": "HCl", "fluoxetine": "HCl", "trazodone": "HCl",
    "cyclobenzaprine": "HCl", "ciprofloxacin": "HCl", "valacyclovir": "HCl", "diphenhydramine": "HCl",
    "cetirizine": "HCl", "tamsulosin": "HCl", "metoprolol": "tartrate", "amlodipine": "besylate",
    "losartan": "potassium", "levothyroxine": "sodium", "montelukast": "sodium", "pantoprazole": "sodium",
    "warfarin": "sodium", "atorvastatin": "calcium", "doxycycline": "hyclate", "clopidogrel": "bisulfate",
    "escitalopram": "oxalate", "citalopram": "HBr", "sumatriptan": "succinate", "ondansetron": "HCl",
}
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                10: "ten", 12: "twelve", 14: "fourteen"}


@dataclass(frozen=True)
class Frequency:
    doses: int
    """Doses per day the frequency allows."""
    prose: tuple[str, ...]
    sig: tuple[str, ...]
    name: str = ""
    """Its key in :data:`FREQUENCIES`."""


FREQUENCIES = {
    "daily": Frequency(1, ("once daily", "daily", "once a day", "every day", "every morning", "in the morning",
                           "at bedtime", "every night at bedtime", "nightly", "every evening", "every 24 hours"),
                       ("QD", "qd", "daily", "QAM", "qAM", "QHS", "qhs", "q24h", "QPM", "q.d.")),
    "bid": Frequency(2, ("twice daily", "twice a day", "two times a day", "2 times daily", "every 12 hours",
                         "morning and evening"), ("BID", "bid", "b.i.d.", "q12h", "Q12H", "q 12 h")),
    "tid": Frequency(3, ("three times daily", "three times a day", "3 times a day", "every 8 hours",
                         "every eight hours"), ("TID", "tid", "t.i.d.", "q8h", "Q8H", "q8hr")),
    "qid": Frequency(4, ("four times daily", "four times a day", "4 times a day", "every 6 hours", "every six hours"),
                     ("QID", "qid", "q.i.d.", "q6h", "Q6H", "q6hrs")),
    "q4h": Frequency(6, ("every 4 hours", "every four hours"), ("q4h", "Q4H", "q4hr", "q 4 h")),
    "q3h": Frequency(8, ("every 3 hours", "every three hours"), ("q3h", "Q3H")),
    "q4-6h": Frequency(6, ("every 4 to 6 hours", "every 4-6 hours", "every four to six hours"),
                       ("q4-6h", "Q4-6H", "q4-6hr", "q 4-6 h")),
    "q6-8h": Frequency(4, ("every 6 to 8 hours", "every 6-8 hours"), ("q6-8h", "Q6-8H", "q6-8hrs")),
    "q8-12h": Frequency(3, ("every 8 to 12 hours", "every 8-12 hours"), ("q8-12h", "Q8-12H")),
}
FREQUENCIES = {key: replace(f, name=key) for key, f in FREQUENCIES.items()}
SCHEDULED_WEIGHTS = {"daily": 45, "bid": 30, "tid": 12, "qid": 8, "q4h": 2, "q4-6h": 1, "q6-8h": 1, "q8-12h": 1}
PRN_WEIGHTS = {"daily": 10, "bid": 10, "tid": 10, "qid": 20, "q4h": 12, "q3h": 3, "q4-6h": 18, "q6-8h": 12, "q8-12h": 5}


def normalise_text(text: str) -> str:
    """Lower case with single spaces: lines equal under this are the same row."""
    return " ".join(text.lower().split())


def split_of(text: str) -> str:
    """The split a line belongs to, fixed by a hash of its normalised text."""
    bucket = int(hashlib.sha256(normalise_text(text).encode()).hexdigest()[:8], 16) % 10
    return next(name for name, buckets in SPLITS.items() if bucket in buckets)


def generate_rows(split: str, n: int, seed: int = 0) -> list[dict]:
    """``n`` distinct rows ``{"id", "text", "target"}`` of ``split``, reproducible from ``seed``.

    ``train``, ``validation`` and ``test`` keep the lines whose text hashes to them; ``shifted`` renders
    every line in the reserved forms of :mod:`agentladder.tasks.medication.shifted` (held out by
    construction, so no hash is needed).
    """
    if split not in SPLITS and split != SHIFTED:
        raise ConfigError(f"unknown split {split!r}: choose one of {', '.join([*SPLITS, SHIFTED])}")
    if n < 0:
        raise ConfigError("n must be at least 0")
    rng = random.Random(f"medication-directions:{split}:{seed}")
    rows: list[dict] = []
    seen: set[str] = set()
    attempts = 0
    while len(rows) < n:
        attempts += 1
        if attempts > 200 * n + 1000:
            raise ConfigError(f"could not find {n} distinct {split} rows; ask for fewer")
        text, target = draw(rng, dangerous=rng.random() < DANGEROUS_SHARE, shifted=split == SHIFTED)
        key = normalise_text(text)
        if key in seen or (split != SHIFTED and split_of(text) != split):
            continue
        seen.add(key)
        rows.append({"id": f"rx-{split}-{len(rows) + 1:06d}", "text": text, "target": target})
    return rows


def draw(rng: random.Random, dangerous: bool, shifted: bool = False) -> tuple[str, dict]:
    """One prescription line and its target, dangerous or not (as asked, when the drug allows); ``shifted``
    writes it in the shifted split's reserved forms."""
    drugs = list(formulary().values())
    for _ in range(20):
        drug = rng.choice(drugs)
        for _ in range(40):
            line = Line.draw(rng, drug, dangerous)
            if is_dangerous(drug.name, line.strength, line.units, line.doses_per_day) == dangerous:
                return (render_shifted(rng, line) if shifted else line.render(rng)), line.target()
    return (render_shifted(rng, line) if shifted else line.render(rng)), line.target()


@dataclass
class Line:
    """One drawn prescription: what the line states (its target), before it is written out."""

    drug: Drug
    strength: float
    units: float
    frequency: Frequency
    as_needed: bool
    cap_doses: int | None
    duration_days: int | None
    duration_unit: str | None

    @property
    def doses_per_day(self) -> int:
        return self.cap_doses if self.cap_doses is not None else self.frequency.doses

    def target(self) -> dict:
        return {"drug": self.drug.name, "strength_mg": number(self.strength), "dose_units": number(self.units),
                "doses_per_day": self.doses_per_day, "as_needed": self.as_needed, "duration_days": self.duration_days}

    @classmethod
    def draw(cls, rng: random.Random, drug: Drug, dangerous: bool) -> Line:
        prn = rng.random() < (0.6 if drug.drug_class in PRN_CLASSES else 0.04)
        units = _weighted(rng, {1: 70, 2: 20, 0.5: 7, 1.5: 3} if drug.form == "tablet" else {1: 75, 2: 22, 3: 3})
        if dangerous and rng.random() < 0.5:
            units = rng.choice([2, 2, 3] if drug.form == "capsule" else [2, 2, 1.5, 3])
        freq = FREQUENCIES[_weighted(rng, PRN_WEIGHTS if prn else SCHEDULED_WEIGHTS)]
        cap = None
        if freq.doses >= 3 and rng.random() < (0.35 if prn else 0.08):
            cap = rng.randint(2, freq.doses - 1)
        days, unit = _duration(rng, drug, prn)
        return cls(drug, rng.choice(drug.strengths_mg), units, freq, prn, cap, days, unit)

    def render(self, rng: random.Random) -> str:
        style = rng.choice(["prose", "prose", "sig", "mixed"])
        sig = style == "sig"
        name = _drug_name(rng, self.drug)
        strength = _strength(rng, self.strength)
        form = _form_word(rng, self.drug.form, 1, sig or rng.random() < 0.3)
        header = f"{name} {strength}" + (f" {form}" if rng.random() < 0.6 else "")
        units = _units(rng, self.units, sig)
        unit_form = _form_word(rng, self.drug.form, self.units, sig)
        route = rng.choice(["PO", "po", "by mouth", "orally", ""] if sig else ["by mouth", "by mouth", "orally", "PO", ""])
        freq = rng.choice(self.frequency.sig if sig or (style == "mixed" and rng.random() < 0.5) else self.frequency.prose)

        tail = []
        if self.as_needed:
            tail.append(_prn(rng, self.drug, sig))
        elif rng.random() < 0.12 and self.drug.drug_class in PURPOSES:
            tail.append("for " + rng.choice(PURPOSES[self.drug.drug_class]))
        if self.duration_days is not None:
            tail.append(_duration_phrase(rng, self.duration_days, self.duration_unit, sig))
        if self.cap_doses is not None:
            tail.append(_cap_phrase(rng, self, sig))
        rng.shuffle(tail)
        if rng.random() < 0.2:
            tail.append(rng.choice(["with food", "with a full glass of water", "on an empty stomach",
                                    "do not crush or chew", "may cause drowsiness", "take with food"]))
        joiner = rng.choice([" ", " ", ", ", "; "])
        tail_text = joiner.join(tail)

        dose = f"{units} {unit_form}".strip()
        if self.units == 2 and rng.random() < 0.08:  # the dose in mg, the tablets spelled out
            dose = f"{fmt(self.strength * self.units)} mg ({units} x {fmt(self.strength)} mg {unit_form})"
        verb = rng.choice(["take", "Take", "TAKE"]) if not sig or rng.random() < 0.3 else ""
        direction = " ".join(p for p in (verb, dose, route, freq) if p)
        if tail_text:
            direction += (" " if joiner == " " else joiner) + tail_text

        layout = rng.choice(["header-direction", "header-direction", "sig", "direction-of", "direction-paren", "rx"])
        if layout == "header-direction":
            text = f"{header}{rng.choice([' - ', ': ', ', ', '; ', ' ', ' -- '])}{direction}"
        elif layout == "sig":
            text = f"{header}{rng.choice(['. Sig: ', ' Sig: ', ' SIG: ', ', sig: '])}{direction}"
        elif layout == "direction-of" and verb:
            rest = direction[len(verb) + 1 + len(dose):]
            text = f"{verb} {dose} of {name} {strength}{rest}"
        elif layout == "direction-paren":
            text = f"{direction} ({header})"
        else:
            text = f"{rng.choice(['Rx: ', 'Rx ', ''])}{header}, {direction}"
        if rng.random() < 0.2:
            text += rng.choice([". ", "  ", ", ", " "]) + _dispensing(rng)
        casing = rng.random()
        if casing < 0.1:
            text = text.upper()
        elif casing < 0.18:
            text = text.lower()
        return " ".join(text.split())


def _weighted(rng: random.Random, weights: dict) -> object:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _duration(rng: random.Random, drug: Drug, prn: bool) -> tuple[int | None, str | None]:
    course = drug.drug_class in COURSE_CLASSES
    if rng.random() >= (0.85 if course else 0.4 if prn else 0.15):
        return None, None
    if course or prn:
        unit = _weighted(rng, {"day": 80, "week": 20})
        count = rng.choice([3, 5, 5, 7, 7, 10, 10, 14]) if unit == "day" else rng.choice([1, 1, 2, 2, 3])
    else:
        unit = _weighted(rng, {"day": 40, "week": 10, "month": 50})
        count = rng.choice([14, 28, 30, 60, 90]) if unit == "day" else rng.choice([2, 4, 6]) if unit == "week" \
            else rng.choice([1, 1, 2, 3, 3, 6])
    return count * {"day": 1, "week": 7, "month": 30}[unit], unit


def _duration_phrase(rng: random.Random, days: int, unit: str, sig: bool) -> str:
    count = days // {"day": 1, "week": 7, "month": 30}[unit]
    word = NUMBER_WORDS.get(count, str(count))
    if unit == "day":
        options = [f"x{count}d", f"x {count}d", f"x {count} days", f"X{count}D", f"for {count}d"] if sig else \
            [f"for {count} days", f"for {count} days", f"for {word} days", f"x {count} days",
             f"for a total of {count} days", f"for {count} days ({word} days)"]
    elif unit == "week":
        single = count == 1
        options = [f"x {count} wk" + ("" if single else "s"), f"x{count}wk", f"x {count} weeks" if not single else "x 1 week"] \
            if sig else (["for 1 week", "for a week", "for one week", "x 1 week"] if single else
                         [f"for {count} weeks", f"for {word} weeks", f"x {count} weeks"])
    else:
        single = count == 1
        options = [f"x {count} mo", f"x{count}mo", "x 1 month" if single else f"x {count} months"] if sig else \
            (["for 1 month", "for a month", "for one month", "x 1 month"] if single else
             [f"for {count} months", f"for {word} months", f"x {count} months"])
    return rng.choice(options)


def _drug_name(rng: random.Random, drug: Drug) -> str:
    r = rng.random()
    generic = drug.name
    if drug.name in SALTS and rng.random() < 0.2:
        generic = f"{drug.name} {SALTS[drug.name]}"
    if drug.name in ABBREVIATIONS and r < 0.3:
        return ABBREVIATIONS[drug.name]
    brand = BRANDS.get(drug.name)
    if brand and r < 0.07:
        return brand
    if brand and r < 0.12:
        return f"{brand} ({_case(rng, generic)})"
    if brand and r < 0.17:
        return f"{_case(rng, generic)} ({brand})"
    return _case(rng, generic)


def _case(rng: random.Random, word: str) -> str:
    return rng.choice([word, word, word.capitalize(), word.capitalize(), word.upper()])


def _strength(rng: random.Random, mg: float) -> str:
    space = rng.choice([" ", " ", ""])
    if mg < 1 and float(round(mg * 1000, 6)).is_integer() and rng.random() < (0.7 if mg < 0.2 else 0.2):
        unit = rng.choice(["mcg", "mcg", "MCG", "micrograms"])
        return f"{fmt(round(mg * 1000, 6))}{' ' if unit == 'micrograms' else space}{unit}"
    if mg >= 1000 and float(mg / 1000).is_integer() and rng.random() < 0.3:
        return f"{fmt(mg / 1000)}{space}{rng.choice(['g', 'gm', 'gram'])}"
    return f"{fmt(mg)}{space}{rng.choice(['mg', 'mg', 'mg', 'MG'])}"


def _units(rng: random.Random, units: float, sig: bool) -> str:
    options = {1: ["1", "1", "one"], 2: ["2", "2", "two"], 3: ["3", "three"], 0.5: ["1/2", "half a", "0.5", "½"],
               1.5: ["1 1/2", "1.5", "one and a half"]}[units]
    if sig and units in (1, 2) and rng.random() < 0.1:
        return {1: "i", 2: "ii"}[units]
    return rng.choice(options)


def _form_word(rng: random.Random, form: str, units: float, abbreviated: bool) -> str:
    plural = units > 1
    if abbreviated:
        return rng.choice({"tablet": ["tab", "TAB", "tabs" if plural else "tab"], "capsule": ["cap", "CAP", "caps" if plural else "cap"]}[form])
    return form + ("s" if plural else "")


def _prn(rng: random.Random, drug: Drug, sig: bool) -> str:
    head = rng.choice(["PRN", "prn", "as needed"] if sig else ["as needed", "as needed", "if needed", "PRN", "as needed"])
    reasons = INDICATIONS.get(drug.drug_class)
    if reasons and rng.random() < 0.6:
        return f"{head} {rng.choice(['for ', ''] if head.lower() == 'prn' else ['for '])}{rng.choice(reasons)}"
    return head


def _cap_phrase(rng: random.Random, line: Line, sig: bool) -> str:
    cap = line.cap_doses
    assert cap is not None
    kinds: list[Callable[[], str]] = [
        lambda: rng.choice([f"no more than {cap} doses per day", f"max {cap} doses/24 h",
                            f"do not take more than {cap} times in 24 hours", f"max {cap} doses per day"]),
    ]
    tablets = cap * line.units
    if float(tablets).is_integer() and line.units >= 1:
        n = int(tablets)
        word = _form_word(rng, line.drug.form, n, sig)
        kinds.append(lambda: rng.choice([f"no more than {n} {word} a day", f"no more than {n} {word} in 24 hours",
                                         f"max {n} {word}/24h", f"max {n} {word}/day", f"do not exceed {n} {word} per day",
                                         f"not to exceed {n} {word} in 24 hours"]
                                        + ([f"(max {n} per day)"] if line.units == 1 else [])))
    mg = cap * line.units * line.strength
    if float(mg).is_integer():
        kinds.append(lambda: rng.choice([f"max {int(mg)} mg/day", f"do not exceed {int(mg)} mg in 24 hours",
                                         f"MDD {int(mg)} mg"]))
    return rng.choice(kinds)()


def _dispensing(rng: random.Random) -> str:
    qty, refills = rng.choice([10, 14, 20, 21, 28, 30, 40, 60, 90, 100, 120]), rng.randint(0, 5)
    return rng.choice([f"Disp: #{qty}", f"#{qty}", f"Qty: {qty}", f"Dispense {qty}", f"Refills: {refills}",
                       f"RF {refills}", f"Disp #{qty}, {refills} refills", f"qty {qty} RF{refills}"])
