"""The ladder report: one table and one plot across the rungs.

Per rung: the headline metric on the **validation** split with its 95 % interval and the gain the gate
judged (the decision), then, for a kept rung, the headline on each **reporting** split (test, shifted)
with the paired test against the model it replaced on the same rows (McNemar's exact p), the task's
other metrics on the test split, training time, tokens, the examples (or pairs, or prompts) it used,
and whether the gate kept it. A ``dpo`` rung with a control gets the control's headline on each split beside
its own, with the paired test of the rung against it. Written as ``ladder.md``, ``ladder.json`` and
``ladder.png`` in the climb's folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentladder.data.io import atomic_write_text
from agentladder.ladder.config import RETRIEVAL
from agentladder.tasks import get_task
from agentladder.train.plots import save_figure

if TYPE_CHECKING:
    from agentladder.ladder.climb import ClimbResult, RungResult

EXAMPLE_UNIT = {"baseline": "shots", "sft": "rows", "dpo": "pairs", "kto": "rows", "rl": "prompts", "classifier": "rows",
                "reward_model": "rows", "judge": "graded rows"}
FEEDBACK = ("reward_model", "judge")
"""Rungs that make a learned reward; their held-out figures are not the task's metrics."""
REPORTED = "test"
"""The reporting split whose other metrics the table shows."""


def _value(m: dict[str, Any] | None) -> str:
    if not m or m.get("value") is None:
        return "-"
    low, high = (m.get("ci") or [None, None])[:2]
    if low is None or high is None:
        return f"{m['value']:.3f}"
    return f"{m['value']:.3f} [{low:.3f}, {high:.3f}]"


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 10:
        return f"{s:.1f} s"
    if s < 90:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min"


def _count(n: int | float | None) -> str:
    if n is None:
        return "-"
    n = int(n)
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e4 else str(n)


def _gain(r: RungResult) -> str:
    gain = r.verdict.get("gain")
    return "-" if gain is None else f"{gain:+.3f}"


def _status(r: RungResult) -> str:
    if "accepted" in r.verdict:
        return "accepted (reward)" if r.verdict["accepted"] else "rejected"
    if not r.kept:
        return "rejected"
    return "kept, target met" if r.verdict.get("target_met") else "kept"


def other_metrics(result: ClimbResult) -> list[str]:
    names: list[str] = []
    for r in result.rungs:
        if r.kind in FEEDBACK:
            continue
        metrics = r.reported.get(REPORTED) or r.metrics
        names += [n for n, m in metrics.items() if n != result.metric and n not in names and "value" in m]
    return names


def _p(r: RungResult, split: str) -> str:
    test = r.paired.get(split)
    if not test:
        return "-"
    return f"p {test['p']:.3g} (+{test['gained']} -{test['lost']})"


def _against(r: RungResult) -> str:
    """``"; against dpo on the same rows: p 0.327 (+10 -16)"``: the paired test on the split that decided,
    shown for a rejected rung too, unless the gate judged it (``gate.max_p``), whose reason already gives it."""
    if not r.paired.get("validation") or r.verdict.get("p") is not None:
        return ""
    return f"; against {r.compared_with} on the same rows: {_p(r, 'validation')}"


def _control_value(r: RungResult, metric: str, split: str) -> str:
    if not r.control:
        return "-"
    metrics = r.control["metrics"] if split == "validation" else r.control["reported"].get(split, {})
    return _short(metrics.get(metric))


def _versus_control(r: RungResult, split: str) -> str:
    test = (r.control or {}).get("paired", {}).get(split)
    return "-" if not test else f"p {test['p']:.3g} (+{test['gained']} -{test['lost']})"


def control_lines(result: ClimbResult) -> list[str]:
    """The markdown section on the controls: each controlled rung against its control on every split."""
    controlled = [r for r in result.rungs if r.control]
    if not controlled:
        return []
    lines = ["", "## Controls", "",
             "Each control is SFT from the rung's starting model on the chosen answers of the rung's pairs, with the "
             "rung's adapter, learning rate, steps and pairs a step: what the pairs teach without the rejected "
             "answers. The paired test is the rung against its control (+ rows only the rung gets right).", "",
             f"| rung | split | {result.metric} rung | {result.metric} control | rung vs control | control train time |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in controlled:
        for split in ["validation", *result.reporting]:
            rung_value = r.metrics if split == "validation" else r.reported.get(split, {})
            if split != "validation" and not rung_value:
                continue
            lines.append(f"| {r.name} | {split} | {_short(rung_value.get(result.metric))} | "
                         f"{_control_value(r, result.metric, split)} | {_versus_control(r, split)} | "
                         f"{_seconds(r.control.get('train_seconds')) if r.control else '-'} |")
    return lines


def _examples(r: RungResult) -> str:
    if r.examples is None:
        return "-"
    text = f"{r.examples} {EXAMPLE_UNIT.get(r.kind, '')}".strip()
    kept = (r.notes.get("filter") or {}).get("yield")
    return text + (f" ({kept:.0%} of the pool)" if kept is not None else "")


def rows(result: ClimbResult) -> list[dict[str, str]]:
    """The table's cells, one dict per rung (columns in order)."""
    out = []
    for r in result.rungs:
        row = {"rung": r.name, "kind": r.kind,
               f"{result.metric} validation [95 % CI]": _value(r.metrics.get(result.metric)), "gain": _gain(r)}
        for split in result.reporting:
            row[f"{result.metric} {split} [95 % CI]"] = _value(r.reported.get(split, {}).get(result.metric))
            row[f"{split} paired test"] = _p(r, split)
        for name in other_metrics(result):
            m = (r.reported.get(REPORTED) or {}).get(name)
            row[f"{name} ({REPORTED})"] = "-" if not m or m.get("value") is None else f"{m['value']:.3f}"
        row.update({"train time": _seconds(r.train_seconds), "tokens": _count(r.tokens),
                    "examples": _examples(r), "gate": _status(r)})
        out.append(row)
    return out


def ladder_table(result: ClimbResult):
    """The ladder as a rich table: one column per rung, one row per figure (fits 80 columns for 4 rungs)."""
    from rich import box
    from rich.table import Table

    gate = result.ladder.gate
    title = (f"ladder {result.ladder.name}: {result.ladder.task}, gate {result.metric} "
             f"{'>=' if gate.higher_is_better else '<='} {gate.target:g} on validation")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("figure", style="bold", no_wrap=True)
    for r in result.rungs:
        table.add_column(r.name, justify="right", no_wrap=True)

    def ci(m: dict[str, Any] | None) -> str:
        low, high = ((m or {}).get("ci") or [None, None])[:2]
        return "-" if low is None or high is None else f"[{low:.2f}, {high:.2f}]"

    table.add_row(f"{result.metric} validation", *[_short(r.metrics.get(result.metric)) for r in result.rungs])
    table.add_row("  95 % CI", *[ci(r.metrics.get(result.metric)) for r in result.rungs])
    table.add_row("  gain (decides)", *[_gain(r) for r in result.rungs])
    for split in result.reporting:
        table.add_row(f"{result.metric} {split}",
                      *[_short(r.reported.get(split, {}).get(result.metric)) for r in result.rungs])
        table.add_row("  95 % CI", *[ci(r.reported.get(split, {}).get(result.metric)) for r in result.rungs])
        table.add_row("  McNemar p", *[f"{r.paired[split]['p']:.3g}" if split in r.paired else "-"
                                       for r in result.rungs])
    for name in other_metrics(result):
        table.add_row(f"{name} ({REPORTED})", *[_short((r.reported.get(REPORTED) or {}).get(name))
                                                for r in result.rungs])
    if any(r.control for r in result.rungs):
        for split in ["validation", *result.reporting]:
            table.add_row(f"control {split}", *[_control_value(r, result.metric, split) for r in result.rungs])
            table.add_row("  vs control", *[_versus_control(r, split).split(" (")[0] for r in result.rungs])
    table.add_row("train time", *[_seconds(r.train_seconds) for r in result.rungs])
    table.add_row("tokens", *[_count(r.tokens) for r in result.rungs])
    table.add_row("examples", *[_examples(r) for r in result.rungs])
    table.add_row("gate", *[_status(r).replace("kept, target met", "target met") for r in result.rungs])
    table.caption = summary_line(result)
    return table


def _short(m: dict[str, Any] | None) -> str:
    return "-" if not m or m.get("value") is None else f"{m['value']:.3f}"


def summary_line(result: ClimbResult) -> str:
    champ = result.champion
    state = "target met" if result.target_met else "target not met"
    reported = "; ".join(f"{split} {_value(champ.reported.get(split, {}).get(result.metric))}"
                         for split in result.reporting)
    return (f"{state} on validation: champion {champ.name} ({champ.version}), {result.metric} "
            f"{_value(champ.metrics.get(result.metric))}" + (f" (reported: {reported})" if reported else "")
            + f"; rungs {_seconds(result.climb_seconds)} wall (this run {_seconds(result.wall_seconds)})")


def _splits_line(result: ClimbResult) -> str:
    parts = [f"{s.name} ({s.rows} rows, {'decides' if s.decides else 'reported only'}, sha256 {s.hash})"
             for s in result.splits]
    return "- splits: " + "; ".join(parts)


def markdown(result: ClimbResult) -> str:
    cells = rows(result)
    cols = list(cells[0])
    lines = [f"# Ladder: {result.ladder.name}", "",
             f"- task: {result.ladder.task}; base model: {result.ladder.base_model}",
             f"- gate: {result.metric} target {result.ladder.gate.target:g}, min gain {result.ladder.gate.min_gain:g}, "
             "judged on the validation split; the test split is scored once per kept rung, after its verdict",
             _splits_line(result),
             f"- {summary_line(result)}", "",
             "| " + " | ".join(cols) + " |",
             "| " + " | ".join("---" if i < 2 else "---:" for i in range(len(cols))) + " |"]
    lines += ["| " + " | ".join(row.values()) + " |" for row in cells]
    lines += ["", "Paired test: McNemar's exact two-sided p between a kept rung and the model it replaced, on the "
              "same rows (+ rows it gets right that the other got wrong, - the reverse).",
              "", "![ladder](ladder.png)", "", "## Gate decisions (validation)", ""]
    lines += [f"- {r.name}: {r.verdict.get('reason')}{_against(r)}" for r in result.rungs]
    lines += control_lines(result)
    note = _task_note(result.ladder.task)
    if note:
        lines += ["", f"> {note}"]
    return "\n".join(lines) + "\n"


def _task_note(task: str) -> str | None:
    if task == RETRIEVAL:  # a ladder of embedders: no generative task behind it
        return None
    return getattr(get_task(task), "note", None)


def to_json(result: ClimbResult) -> dict[str, Any]:
    return {"ladder": result.ladder.name, "task": result.ladder.task, "base_model": result.ladder.base_model,
            "metric": result.metric, "target": result.ladder.gate.target, "target_met": result.target_met,
            "champion": result.champion.version, "wall_seconds": result.wall_seconds,
            "climb_seconds": result.climb_seconds, "splits": [s.record() | {"decides": s.decides} for s in result.splits],
            "rungs": [{k: v for k, v in r.__dict__.items() if k != "fingerprint"} for r in result.rungs]}


def plot(result: ClimbResult, path: str | Path) -> Path:
    """Headline metric with its interval and the other metrics per rung (left), training time (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in result.rungs]
    x = list(range(len(names)))
    fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    head = [r.value(result.metric) for r in result.rungs]
    ci = [(r.metrics.get(result.metric) or {}).get("ci") or [None, None] for r in result.rungs]
    yerr = [[(h - c[0]) if h is not None and c[0] is not None else 0 for h, c in zip(head, ci, strict=True)],
            [(c[1] - h) if h is not None and c[1] is not None else 0 for h, c in zip(head, ci, strict=True)]]
    ax.errorbar(x, [h if h is not None else float("nan") for h in head], yerr=yerr, marker="o", linewidth=2.5,
                capsize=4, label=f"{result.metric} validation (decides, 95 % CI)")
    for split, style in zip(result.reporting, ("-", ":", "-."), strict=False):
        ys = [r.value(result.metric, split) for r in result.rungs]
        ax.plot(x, [y if y is not None else float("nan") for y in ys], marker="s", linestyle=style, linewidth=1.8,
                label=f"{result.metric} {split} (reported)")
    for name in other_metrics(result):
        ys = [r.value(name, REPORTED) for r in result.rungs]
        if any(y is not None for y in ys):
            ax.plot(x, [y if y is not None else float("nan") for y in ys], marker=".", linewidth=0.8, alpha=0.6,
                    label=f"{name} ({REPORTED})")
    controls = [(i, (r.control or {}).get("metrics", {}).get(result.metric, {}).get("value"))
                for i, r in enumerate(result.rungs)]
    controls = [(i, v) for i, v in controls if v is not None]
    if controls:
        ax.scatter([i for i, _ in controls], [v for _, v in controls], marker="x", s=60, color="black", zorder=5,
                   label=f"{result.metric} validation, SFT control")
    ax.axhline(result.ladder.gate.target, color="grey", linestyle="--", linewidth=1, label="target")
    for i, r in enumerate(result.rungs):
        if not r.kept and r.kind not in FEEDBACK:
            ax.annotate("rejected", (i, head[i] or 0), textcoords="offset points", xytext=(0, -14), ha="center",
                        fontsize=7, color="firebrick")
    ax.set_xticks(x, names)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{result.ladder.name}: {result.ladder.task}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax_t.bar(x, [(r.train_seconds or 0) / 60 for r in result.rungs], color="tab:grey")
    ax_t.set_xticks(x, names)
    ax_t.set_ylabel("training time (min)")
    ax_t.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save_figure(fig, path)


def write_report(result: ClimbResult, out_dir: str | Path) -> Path:
    """``ladder.json``, ``ladder.png`` and ``ladder.md`` in ``out_dir``; returns the markdown's path."""
    out = Path(out_dir)
    atomic_write_text(out / "ladder.json", json.dumps(to_json(result), indent=2, default=str) + "\n")
    plot(result, out / "ladder.png")
    atomic_write_text(out / "ladder.md", markdown(result))
    return out / "ladder.md"


__all__ = ["control_lines", "ladder_table", "markdown", "plot", "rows", "to_json", "write_report"]
