"""An evaluation's report: the terminal table, ``report.json``, ``report.md`` and the plots."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentladder.data.io import atomic_write_text
from agentladder.evals.plots import write_plots
from agentladder.tasks.metrics import Metric
from agentladder.tasks.task import Summary


@dataclass
class ModelResult:
    """One model's outputs and figures on a task."""

    label: str
    summary: Summary
    records: list[dict[str, Any]]
    """One per row: input, target, output, parse, score (what ``samples.jsonl`` holds)."""
    generated: int = 0
    """Rows generated in this run (the rest were reused from the samples file)."""
    seconds: float = 0.0
    """Wall time of that generation, model loading left out."""
    load_seconds: float = 0.0
    extra: dict[str, Metric] = field(default_factory=dict)
    """Figures added after generation: semantic similarity, judge score, win rate."""
    notes: dict[str, Any] = field(default_factory=dict)
    """Counts that qualify them: unscored verdicts, position consistency."""

    @property
    def metrics(self) -> dict[str, Metric]:
        return {**self.summary.metrics, **self.extra}

    @property
    def rows_per_s(self) -> float | None:
        return self.generated / self.seconds if self.generated and self.seconds > 0 else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, metric in self.metrics.items():
            out[name] = metric.to_json()
            if name in self.summary.breakdowns:
                out[name]["breakdown"] = {k: m.to_json() for k, m in self.summary.breakdowns[name].items()}
        for name, parts in self.summary.breakdowns.items():
            if name not in out:
                out[name] = {"breakdown": {k: m.to_json() for k, m in parts.items()}}
        if self.summary.confusions:
            out["confusion"] = self.summary.confusions
        if self.summary.matrices:
            out["matrices"] = self.summary.matrices
        out.update(self.notes)
        out["speed"] = {"rows_generated": self.generated, "seconds": round(self.seconds, 3),
                        "rows_per_s": None if self.rows_per_s is None else round(self.rows_per_s, 4),
                        "load_seconds": round(self.load_seconds, 3)}
        return out


@dataclass
class EvalReport:
    """Every model's result on one task and data set."""

    task: str
    description: str
    note: str | None
    headline: str
    data: str
    rows: int
    shots: int
    shot_ids: list[str]
    max_new_tokens: int
    created: str
    models: dict[str, ModelResult]

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task, "description": self.description, "note": self.note, "headline": self.headline,
            "data": self.data, "rows": self.rows, "shots": self.shots, "shot_ids": self.shot_ids,
            "max_new_tokens": self.max_new_tokens, "created": self.created,
            "models": {label: result.to_json() for label, result in self.models.items()},
        }

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for result in self.models.values():
            names += [n for n in result.metrics if n not in names]
        return names

    def table(self):
        """The report as a rich table: one row per figure, one column per model (fits 80 columns for 2-3 models)."""
        from rich.table import Table

        table = Table(title=f"{self.task}: {self.rows} rows, {self.shots}-shot", title_justify="left")
        table.add_column("figure [95 % CI]", style="bold")
        for label in self.models:
            table.add_column(label, justify="right", overflow="fold")
        for name in self.metric_names():
            table.add_row(name, *[_cell(r.metrics.get(name)) for r in self.models.values()])
        table.add_row("rows/s", *[f"{r.rows_per_s:.3g}" if r.rows_per_s else "reused" for r in self.models.values()])
        if self.note:
            table.caption = self.note
        return table

    def markdown(self) -> str:
        names = self.metric_names()
        lines = [f"# Evaluation: {self.task}", ""]
        if self.note:
            lines += [f"> {self.note}", ""]
        lines += [
            f"- task: {self.description}",
            f"- data: {self.data} ({self.rows} rows)",
            f"- prompt: {self.shots}-shot" + (f" (examples {', '.join(self.shot_ids)})" if self.shot_ids else ""),
            f"- generation: greedy, at most {self.max_new_tokens} new tokens",
            f"- created: {self.created}",
            "- intervals: 95 % percentile bootstrap over rows",
            "",
            "| model | " + " | ".join(names) + " | rows/s |",
            "| --- | " + " | ".join("---:" for _ in names) + " | ---: |",
        ]
        for label, result in self.models.items():
            speed = f"{result.rows_per_s:.2f}" if result.rows_per_s else "reused"
            lines.append(f"| {label} | " + " | ".join(_cell(result.metrics.get(n)) for n in names) + f" | {speed} |")
        first = next(iter(self.models.values()))
        for name in first.summary.breakdowns:
            parts = list(first.summary.breakdowns[name])
            lines += ["", f"## {name} by part", "", "| part | " + " | ".join(self.models) + " |",
                      "| --- | " + " | ".join("---:" for _ in self.models) + " |"]
            for part in parts:
                cells = [_cell(r.summary.breakdowns.get(name, {}).get(part)) for r in self.models.values()]
                lines.append(f"| {part} | " + " | ".join(cells) + " |")
            lines += ["", f"![{name}]({name}.png)"]
        for name in first.summary.confusions:
            lines += ["", f"## {name}", "", "| model | flagged & true | missed | false alarm | correctly clear |",
                      "| --- | ---: | ---: | ---: | ---: |"]
            for label, r in self.models.items():
                c = r.summary.confusions.get(name, {})
                lines.append(f"| {label} | {c.get('tp', 0)} | {c.get('fn', 0)} | {c.get('fp', 0)} | {c.get('tn', 0)} |")
            lines += ["", f"![{name}]({name}.png)"]
        for name in first.summary.matrices:
            lines += ["", f"## {name} (rows: the truth; columns: the answer)"]
            for label, r in self.models.items():
                matrix = r.summary.matrices.get(name, {})
                answers = list(next(iter(matrix.values()), {}))
                lines += ["", f"### {label}", "", "| truth | " + " | ".join(answers) + " |",
                          "| --- | " + " | ".join("---:" for _ in answers) + " |"]
                lines += [f"| {truth} | " + " | ".join(str(row.get(a, 0)) for a in answers) + " |"
                          for truth, row in matrix.items()]
            lines += ["", f"![{name}]({name}.png)"]
        notes = {label: r.notes for label, r in self.models.items() if r.notes}
        if notes:
            lines += ["", "## Judge", ""]
            for label, n in notes.items():
                lines.append(f"- {label}: " + ", ".join(f"{k} {v}" for k, v in n.items()))
        lines += ["", "## Some rows each model got wrong", ""]
        for label, result in self.models.items():
            missed = [rec for rec in result.records if not _right(rec)][:5]
            lines += [f"### {label}", ""] + ([] if missed else ["(none)"])
            for rec in missed:
                fields = _wrong_fields(rec)
                why = [rec["parse"].get("error"), "wrong: " + ", ".join(fields) if fields else None]
                error = "; ".join(x for x in why if x)
                lines += [f"- `{_md(rec['input'])}`", f"  - output: `{_md(rec['output'])[:300]}`", f"  - {error}"]
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def write(self, out_dir: str | os.PathLike) -> Path:
        """Write ``report.json``, ``report.md`` and the plots into ``out_dir`` (samples are written as they come)."""

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "report.json", json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")
        write_plots(self, out)
        atomic_write_text(out / "report.md", self.markdown())
        return out


def _cell(metric: Metric | None) -> str:
    return "-" if metric is None else str(metric)


def _right(rec: dict[str, Any]) -> bool:
    score = rec.get("score", {})
    return bool(score.get("exact", score.get("correct", rec["parse"].get("valid"))))


def _wrong_fields(rec: dict[str, Any]) -> list[str]:
    """The fields a row got wrong, when the task scores fields and the output had any to score."""
    fields = rec.get("score", {}).get("fields", {})
    if not fields or not isinstance(rec["parse"].get("value"), dict):
        return [] if rec["parse"].get("error") else ["answer"]
    return [name for name, ok in fields.items() if not ok]


def _md(text: str) -> str:
    return " ".join(str(text).split()).replace("`", "'").replace("|", "/")
