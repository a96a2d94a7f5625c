"""The medication-directions task: one prescription line in, six structured fields out.

Rows are ``{"id", "text", "target": {drug, strength_mg, dose_units,
doses_per_day, as_needed, duration_days}}`` (see ``docs/evals.md``). Scores:

- ``validity``: the output holds a JSON object with exactly the six fields, each of its type;
- ``field_accuracy``: per field, the share equal to the target (numbers within 1e-6 relative),
  and its mean over the fields. A field counts when it is present, typed right and equal,
  even if another field spoils the object's validity;
- ``exact_match``: valid and every field right (the headline);
- ``dangerous_recall`` / ``false_alarm_rate``: a row is dangerous when
  ``strength_mg x dose_units x doses_per_day`` of its target exceeds the drug's
  ``max_daily_mg``; the pipeline flags it from the model's parse (when the parse gives
  drug, strength, units and doses typed right and the drug is in the formulary).
  Recall is the share of dangerous rows flagged, false alarms the share of safe rows flagged.
  Rows whose target drug is not in the formulary count toward neither.

The formulary limits are illustrative for a synthetic benchmark, not clinical guidance.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentladder.data.io import DataError, iter_json_lines, validate_row
from agentladder.tasks.medication.formulary import is_dangerous
from agentladder.tasks.medication.generator import generate_rows, number
from agentladder.tasks.metrics import confusion, mean_metric, numbers_equal
from agentladder.tasks.parsing import extract_json_object, is_integer, is_number
from agentladder.tasks.style import PromptStyle
from agentladder.tasks.task import Parsed, Sample, Summary, Task

FIELDS = ("drug", "strength_mg", "dose_units", "doses_per_day", "as_needed", "duration_days")

SYSTEM_PROMPT = """\
You read one prescription line and reply with only a JSON object with exactly these fields:
- "drug" (string): the generic drug name, lower case.
- "strength_mg" (number): strength of one tablet or capsule in mg (50 mcg is 0.05).
- "dose_units" (number): tablets or capsules per dose.
- "doses_per_day" (number): the most doses allowed in 24 hours. Daily, every morning or at bedtime = 1; \
twice daily or every 12 hours = 2; three times daily or every 8 hours = 3; four times daily or every 6 hours = 4; \
every 4 hours = 6. For a range of intervals use the shortest (every 4 to 6 hours = 6). \
A stated daily maximum overrides the frequency (no more than 3 tablets a day at 1 tablet a dose = 3).
- "as_needed" (boolean): true for as needed, PRN or if needed.
- "duration_days" (integer or null): "for 10 days" = 10, "x 2 weeks" = 14, "for 1 month" = 30; null if none is given."""

BRIEF_PROMPT = "Parse this prescription line into JSON."
"""``medication-directions@brief``: the instruction of a model tuned on the task, which has learnt the fields and
their rules from the data (8 tokens instead of about 300)."""

NOTE = "The formulary limits are illustrative for a synthetic benchmark, not clinical guidance."


class Directions(BaseModel):
    """The ground truth of one row. Strict: ``"500"`` is not a number, ``1`` is not a boolean."""

    model_config = ConfigDict(extra="forbid", strict=True)

    drug: str = Field(min_length=1)
    strength_mg: float = Field(gt=0)
    dose_units: float = Field(gt=0)
    doses_per_day: float = Field(gt=0)
    as_needed: bool
    duration_days: int | None = Field(ge=1)

    @field_validator("duration_days", mode="before")
    @classmethod
    def _integral_float(cls, v: Any) -> Any:
        # JSON Schema counts 10.0 as an integer; so do we.
        return int(v) if isinstance(v, float) and v.is_integer() else v


class MedicationRow(BaseModel):
    """One dataset row. Keys beyond these are allowed and ignored (files written by others)."""

    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    text: str = Field(min_length=1)
    target: Directions
    metadata: dict[str, Any] = Field(default_factory=dict)


def target_dict(d: Directions | dict) -> dict[str, Any]:
    """The target with numbers written as people write them (500, not 500.0), fields in order."""
    d = d.model_dump() if isinstance(d, Directions) else d
    return {
        "drug": d["drug"], "strength_mg": number(d["strength_mg"]), "dose_units": number(d["dose_units"]),
        "doses_per_day": number(d["doses_per_day"]), "as_needed": d["as_needed"],
        "duration_days": None if d["duration_days"] is None else int(d["duration_days"]),
    }


def check_fields(obj: dict[str, Any]) -> list[str]:
    """What keeps ``obj`` from being a valid answer: missing or extra fields, wrong types."""
    problems = []
    missing = [f for f in FIELDS if f not in obj]
    extra = [k for k in obj if k not in FIELDS]
    if missing:
        problems.append("missing " + ", ".join(missing))
    if extra:
        problems.append("unexpected " + ", ".join(map(str, extra)))
    for name in FIELDS:
        if name in obj and not _typed_right(name, obj[name]):
            problems.append(f"{name} is {type(obj[name]).__name__} {json.dumps(obj[name])[:40]}, not {_TYPES[name]}")
    return problems


_TYPES = {"drug": "a string", "strength_mg": "a number", "dose_units": "a number", "doses_per_day": "a number",
          "as_needed": "a boolean", "duration_days": "an integer or null"}


def _typed_right(name: str, value: Any) -> bool:
    if name == "drug":
        return isinstance(value, str) and bool(value.strip())
    if name == "as_needed":
        return isinstance(value, bool)
    if name == "duration_days":
        return value is None or is_integer(value)
    return is_number(value)


def field_correct(name: str, value: Any, target: Any) -> bool:
    """Whether one output field equals the target: typed right, strings equal, numbers within 1e-6 relative."""
    if not _typed_right(name, value):
        return False
    if name == "drug" or name == "as_needed":
        return value == target
    if value is None or target is None:
        return value is None and target is None
    return numbers_equal(float(value), float(target))


def flagged(value: Any) -> bool:
    """Whether the pipeline flags a parse as dangerous (needs drug, strength, units and doses typed right)."""
    if not isinstance(value, dict) or not all(_typed_right(f, value.get(f)) for f in FIELDS[:4]):
        return False
    return bool(is_dangerous(value["drug"], value["strength_mg"], value["dose_units"], value["doses_per_day"]))


class MedicationDirections(Task):
    name: ClassVar[str] = "medication-directions"
    description: ClassVar[str] = "Parse a prescription line into drug, strength, dose, frequency, PRN and duration."
    headline: ClassVar[str] = "exact_match"
    max_new_tokens: ClassVar[int] = 96
    stop_at_json: ClassVar[bool] = True
    note: ClassVar[str] = NOTE
    fields: ClassVar[tuple[str, ...]] = FIELDS
    splits: ClassVar[tuple[str, ...]] = ("train", "validation", "test", "shifted")
    row_scores: ClassVar[dict[str, str]] = {"exact_match": "exact", "validity": "valid"}
    styles: ClassVar[Mapping[str, PromptStyle]] = {
        "brief": PromptStyle(instructions=BRIEF_PROMPT),
        "brief-lower": PromptStyle(instructions=BRIEF_PROMPT, lowercase_input=True, compact_answer=True),
    }
    """``brief``: the one-line instruction; ``brief-lower``: the same on the lower-cased line, answered in
    JSON without spaces (9 of an answer's 52 tokens are layout)."""

    def load(self, path: str | os.PathLike) -> list[Sample]:
        samples, first_line = [], {}
        for lineno, obj in iter_json_lines(path):
            row = validate_row(MedicationRow, obj, path, lineno)
            rid = str(row.id) if row.id is not None else f"line-{lineno}"
            if rid in first_line:
                raise DataError(path, lineno, "id", f"duplicate id {rid!r} (first on line {first_line[rid]})")
            first_line[rid] = lineno
            samples.append(Sample(rid, row.text, target_dict(row.target), dict(row.metadata)))
        if not samples:
            raise DataError(path, None, None, "no rows")
        return samples

    def make(self, split: str, n: int, seed: int = 0) -> list[Sample]:
        return [Sample(r["id"], r["text"], r["target"]) for r in generate_rows(split, n, seed)]

    def to_row(self, sample: Sample) -> dict[str, Any]:
        return {"id": sample.id, "text": sample.input, "target": target_dict(sample.target)}

    def shot_pool(self) -> list[Sample]:
        return _shot_pool()

    def system_prompt(self) -> str:
        return SYSTEM_PROMPT

    def target_text(self, sample: Sample) -> str:
        separators = (",", ":") if self.style.compact_answer else None
        return json.dumps(target_dict(sample.target), ensure_ascii=False, separators=separators)

    def parse(self, output: str) -> Parsed:
        obj = extract_json_object(output)
        if obj is None:
            return Parsed(None, False, "no JSON object in the output")
        problems = check_fields(obj)
        return Parsed(obj, not problems, "; ".join(problems) or None)

    def score(self, sample: Sample, parsed: Parsed) -> dict[str, Any]:
        value = parsed.value if isinstance(parsed.value, dict) else {}
        target = sample.target
        fields = {f: f in value and field_correct(f, value[f], target[f]) for f in FIELDS}
        danger = is_dangerous(target["drug"], target["strength_mg"], target["dose_units"], target["doses_per_day"])
        return {
            "valid": parsed.valid,
            "exact": parsed.valid and all(fields.values()),
            "fields": fields,
            "dangerous": danger,
            "flagged": flagged(value),
        }

    def summarise(self, samples: Sequence[Sample], scores: Sequence[dict[str, Any]], *,
                  n_resamples: int = 1000, seed: int = 0) -> Summary:
        kw = {"n_resamples": n_resamples, "seed": seed}
        per_field = {f: mean_metric([s["fields"][f] for s in scores], **kw) for f in FIELDS}
        dangerous = [s["dangerous"] for s in scores]
        flags = [s["flagged"] for s in scores]
        pairs = list(zip(flags, dangerous, strict=True))
        return Summary(
            metrics={
                "exact_match": mean_metric([s["exact"] for s in scores], **kw),
                "field_accuracy": mean_metric([sum(s["fields"].values()) / len(FIELDS) for s in scores], **kw),
                "validity": mean_metric([s["valid"] for s in scores], **kw),
                "dangerous_recall": mean_metric([f if d is True else None for f, d in pairs], **kw),
                "false_alarm_rate": mean_metric([f if d is False else None for f, d in pairs], **kw),
            },
            breakdowns={"field_accuracy": per_field},
            confusions={"dangerous_flag": confusion(flags, dangerous)},
        )


@functools.cache
def _shot_pool() -> list[Sample]:
    """Training rows for few-shot prompts, the first few chosen to show different cases."""
    rows = [Sample(r["id"], r["text"], r["target"]) for r in generate_rows("train", 200, seed=0)]
    rows = [r for r in rows if r.input != r.input.upper() and len(r.input) < 110]
    wanted = [
        lambda t: not t["as_needed"] and t["duration_days"] is not None and t["dose_units"] == 1,
        lambda t: t["as_needed"] and t["duration_days"] is None and t["doses_per_day"] == 6,
        lambda t: t["strength_mg"] < 1 or t["dose_units"] == 2,
        lambda t: t["as_needed"] and t["duration_days"] is not None,
        lambda t: t["doses_per_day"] == 2 and not t["as_needed"],
    ]
    chosen: list[Sample] = []
    for want in wanted:
        pick = next((r for r in rows if r not in chosen and want(r.target)
                     and not is_dangerous(*(r.target[f] for f in FIELDS[:4]))), None)
        if pick is not None:
            chosen.append(pick)
    return chosen + [r for r in rows if r not in chosen]
