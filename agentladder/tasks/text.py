"""The generic ``text`` task: any ``{"input", "target"}`` JSONL, scored as short answers.

Rows are ``{"id"?, "input": "...", "target": "...", "system"?: "..."}``
(``prompt`` is accepted for ``input``). Scores, after SQuAD's answer
normalisation (lower case, no punctuation or articles): ``exact_match``,
``token_f1``, and ``macro_f1`` over the distinct targets, which is the
usual figure when the targets are class labels. Semantic similarity and an
LLM judge can be added to any task from the evaluation's options.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from agentladder.data.io import DataError, iter_json_lines, validate_row
from agentladder.data.schema import Message
from agentladder.tasks.metrics import (
    Metric,
    bootstrap_ci,
    macro_f1,
    mean_metric,
    normalise_answer,
    token_f1,
)
from agentladder.tasks.task import Parsed, Sample, Summary, Task


class TextRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    input: str = Field(min_length=1, validation_alias=AliasChoices("input", "prompt"))
    target: str
    system: str | None = None


class TextTask(Task):
    name: ClassVar[str] = "text"
    description: ClassVar[str] = "Any {input, target} JSONL scored as short answers (exact match, token F1, macro-F1)."
    headline: ClassVar[str] = "exact_match"
    row_scores: ClassVar[dict[str, str]] = {"exact_match": "exact"}

    def load(self, path: str | os.PathLike) -> list[Sample]:
        samples = []
        for lineno, obj in iter_json_lines(path):
            row = validate_row(TextRow, obj, path, lineno)
            rid = str(row.id) if row.id is not None else f"line-{lineno}"
            samples.append(Sample(rid, row.input, row.target, {"system": row.system} if row.system else {}))
        if not samples:
            raise DataError(path, None, None, "no rows")
        return samples

    def prompt(self, sample: Sample, shots: Sequence[Sample] = ()) -> list[Message]:
        messages = super().prompt(sample, shots)
        if sample.metadata.get("system"):
            messages.insert(0, Message(role="system", content=sample.metadata["system"]))
        return messages

    def parse(self, output: str) -> Parsed:
        text = output.strip()
        return Parsed(text, bool(text), None if text else "empty output")

    def score(self, sample: Sample, parsed: Parsed) -> dict[str, Any]:
        answer = normalise_answer(parsed.value or "")
        return {"answer": answer, "exact": answer == normalise_answer(sample.target),
                "token_f1": token_f1(parsed.value or "", sample.target)}

    def summarise(self, samples: Sequence[Sample], scores: Sequence[dict[str, Any]], *,
                  n_resamples: int = 1000, seed: int = 0) -> Summary:
        pairs = [(sc["answer"], normalise_answer(sm.target)) for sm, sc in zip(samples, scores, strict=True)]

        def stat(rows: list[tuple[str, str]]) -> float:
            return macro_f1([p for p, _ in rows], [t for _, t in rows])

        low, high = bootstrap_ci(pairs, stat, n_resamples=n_resamples, seed=seed)
        kw = {"n_resamples": n_resamples, "seed": seed}
        return Summary(metrics={
            "exact_match": mean_metric([s["exact"] for s in scores], **kw),
            "token_f1": mean_metric([s["token_f1"] for s in scores], **kw),
            "macro_f1": Metric(stat(pairs), low, high, len(pairs)),
        })
