"""``guard scan`` and ``guard eval``: run a policy over a labelled JSONL file and measure it.

A labelled row is ``{"text", "entities": [{"type", "start", "end"}], "topic", "injection"}`` (plus an
optional ``id``, ``where`` — ``input`` by default, or ``output``, ``tool_result`` — and ``metadata``).
``topic`` is a denied topic's name or null (on no denied topic); a row without the key (or without
``injection``) is left out of that detector's figures.

Personal data is scored per entity type. A labelled entity is *found* when spans the guard reported
with the same type cover at least half of its characters; a reported span is *correct* when at least
half of its characters lie inside labelled entities of its type. Precision, recall and F1 come with
95 % bootstrap intervals over rows; ``exact`` counts spans with the same type, start and end. ``leak``
is the share of labelled entities of which some character stays unmasked whatever the type reported.

Topics and injection are scored per row at each of the three strengths: a row is flagged for a topic
when its score passes the strength's threshold (the predicted topic is the best-scored one flagged).
Injection detection rate is recall; the false-alarm rate is the share of clean rows flagged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from agentladder.agents.guard.calibrate import STRENGTHS
from agentladder.agents.guard.pipeline import Guard
from agentladder.agents.guard.policy import EntityType, Where
from agentladder.data.io import iter_json_lines, validate_row, write_jsonl
from agentladder.errors import DataError
from agentladder.tasks.metrics import Metric, bootstrap_ci


class Entity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: EntityType
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class LabelledRow(BaseModel):
    """One row of a labelled guard file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    text: str
    entities: list[Entity] = Field(default_factory=list)
    topic: str | None = None
    injection: StrictBool | None = None
    """true or false (strict: a string such as "yes" is an error, not a guess)."""
    where: Where = "input"
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _spans_fit(self) -> LabelledRow:
        for i, e in enumerate(self.entities):
            if not e.start < e.end <= len(self.text):
                err = ValueError(f"span [{e.start}, {e.end}) does not fit a text of {len(self.text)} characters")
                err.loc = ["entities", i]  # type: ignore[attr-defined]
                raise err
        return self

    @property
    def labels_topic(self) -> bool:
        return "topic" in self.model_fields_set

    @property
    def labels_injection(self) -> bool:
        return self.injection is not None


def read_labelled(path: str | os.PathLike) -> Iterator[LabelledRow]:
    """Rows of a labelled JSONL file; the first bad one raises a file:line:field error."""
    count = 0
    for line, obj in iter_json_lines(path):
        count += 1
        yield validate_row(LabelledRow, obj, path, line)
    if not count:
        raise DataError(path, None, None, "no rows")


def scan_file(guard: Guard, data: str | os.PathLike, out: str | os.PathLike,
              progress: Callable[[int], None] | None = None) -> int:
    """``guard scan``: each row's findings (type, span, score, rule, action), decision and masked text."""
    rows = []
    for i, row in enumerate(read_labelled(data)):
        result = guard.check(row.text, row.where, conversation_id=row.id)
        rows.append({"id": row.id or f"row-{i + 1}", **result.to_json()})
        if progress:
            progress(i + 1)
    return write_jsonl(out, rows)


# -- personal data -----------------------------------------------------------------------------------

def _coverage(span: tuple[int, int], others: list[tuple[int, int]]) -> float:
    covered = np.zeros(span[1] - span[0], dtype=bool)
    for s, e in others:
        lo, hi = max(s, span[0]), min(e, span[1])
        if lo < hi:
            covered[lo - span[0]:hi - span[0]] = True
    return float(covered.mean()) if len(covered) else 0.0


def pii_counts(gold: list[Entity], predicted: list[tuple[str, int, int]], types: list[str]
               ) -> dict[str, dict[str, int]]:
    """Per type: ``found`` and ``gold`` entities, ``correct`` and ``predicted`` spans, ``exact`` matches, ``leaked``."""
    out = {}
    all_pred = [(s, e) for _, s, e in predicted]
    for t in types:
        g = [(e.start, e.end) for e in gold if e.type == t]
        p = [(s, e) for pt, s, e in predicted if pt == t]
        out[t] = {"gold": len(g), "found": sum(_coverage(x, p) >= 0.5 for x in g),
                  "predicted": len(p), "correct": sum(_coverage(x, g) >= 0.5 for x in p),
                  "exact": len(set(g) & set(p)), "leaked": sum(_coverage(x, all_pred) < 1.0 for x in g)}
    return out


def _ratio_metric(rows: list[dict[str, int]], num: str, den: str) -> Metric:
    n = sum(r[den] for r in rows)
    if n == 0:
        return Metric(None, None, None, 0)
    value = sum(r[num] for r in rows) / n
    low, high = bootstrap_ci(rows, lambda s: (sum(r[num] for r in s) / max(1, sum(r[den] for r in s))),
                             n_resamples=500)
    return Metric(value, low, high, n)


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 2 * p * r / (p + r) if p + r else 0.0


def pii_report(per_row: list[dict[str, dict[str, int]]], types: list[str]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for t in [*types, "overall"]:
        rows = [r[t] for r in per_row] if t != "overall" else [
            {k: sum(r[x][k] for x in types) for k in ("gold", "found", "predicted", "correct", "exact", "leaked")}
            for r in per_row]
        precision, recall = _ratio_metric(rows, "correct", "predicted"), _ratio_metric(rows, "found", "gold")
        exact_p = _ratio_metric(rows, "exact", "predicted").value
        exact_r = _ratio_metric(rows, "exact", "gold").value
        report[t] = {"precision": precision.to_json(), "recall": recall.to_json(),
                     "f1": _f1(precision.value, recall.value), "exact_f1": _f1(exact_p, exact_r),
                     "leak_rate": _ratio_metric(rows, "leaked", "gold").value,
                     "gold": sum(r["gold"] for r in rows), "predicted": sum(r["predicted"] for r in rows)}
    return report


# -- topics and injection ------------------------------------------------------------------------------

def _binary(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """Precision, recall (detection rate) and false-alarm rate of ``(predicted, label)`` pairs, with CIs."""
    rows = [{"tp": int(p and y), "fp": int(p and not y), "pos": int(y), "neg": int(not y), "flag": int(p)}
            for p, y in pairs]
    return {"precision": _ratio_metric(rows, "tp", "flag").to_json(), "recall": _ratio_metric(rows, "tp", "pos").to_json(),
            "false_alarm_rate": _ratio_metric(rows, "fp", "neg").to_json(),
            "positives": sum(r["pos"] for r in rows), "negatives": sum(r["neg"] for r in rows)}


def evaluate_file(guard: Guard, data: str | os.PathLike, *, progress: Callable[[int], None] | None = None,
                  where: Literal["row"] | str = "row") -> dict[str, Any]:
    """``guard eval``: personal data per type, topics and injection per strength, latency per row."""
    types = list(guard.policy.pii.entities) if guard.policy.pii is not None else []
    per_row, topic_pairs, injection_pairs, latency = [], {s: [] for s in STRENGTHS}, {s: [] for s in STRENGTHS}, []
    topic_names = {t.name for t in guard.policy.denied_topics}
    for i, row in enumerate(read_labelled(data)):
        place = row.where if where == "row" else where
        start = time.perf_counter()
        scan = guard.scan(row.text, place)
        results = {s: guard.decide(row.text, scan, place, strength=s) for s in STRENGTHS}
        latency.append(time.perf_counter() - start)
        per_row.append(pii_counts(row.entities, [(f.type, f.start, f.end) for f in scan.pii], types))
        for s, result in results.items():
            if row.labels_topic and topic_names and place in ("input", "output"):
                flagged = [f for f in result.findings if f.kind == "topic"]
                predicted = max(flagged, key=lambda f: f.score).type if flagged else None
                gold = row.topic if row.topic in topic_names else None
                topic_pairs[s].append((predicted, gold))
            if row.labels_injection and guard.policy.injection is not None and \
                    place in guard.policy.injection.where:
                injection_pairs[s].append((any(f.kind == "injection" for f in result.findings), bool(row.injection)))
        if progress:
            progress(i + 1)
    ms = np.asarray(latency) * 1000
    report: dict[str, Any] = {"rows": len(per_row), "policy": guard.policy.name,
                              "latency_ms": {"mean": float(ms.mean()), "p50": float(np.percentile(ms, 50)),
                                             "p99": float(np.percentile(ms, 99))}}
    if types:
        report["pii"] = pii_report(per_row, types)
    if any(topic_pairs.values()):
        report["topics"] = {s: {**_binary([(p is not None, g is not None) for p, g in pairs]),
                                "exact_topic": sum(p == g for p, g in pairs if g is not None) /
                                max(1, sum(g is not None for _, g in pairs))}
                            for s, pairs in topic_pairs.items()}
    if any(injection_pairs.values()):
        report["injection"] = {s: _binary(pairs) for s, pairs in injection_pairs.items()}
    return report
