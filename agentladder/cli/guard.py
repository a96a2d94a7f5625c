"""``agentladder guard scan|eval|train``: run a guard policy over rows, measure it, build its classifiers."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentladder.agents.guard import Guard, evaluate_file, scan_file
from agentladder.agents.guard.calibrate import STRENGTHS
from agentladder.agents.guard.embed import guard_home
from agentladder.agents.guard.injection import load_injection_detector
from agentladder.agents.guard.tagger import MiniLMTagger
from agentladder.agents.guard.topics import similarity_thresholds
from agentladder.cli.errors import friendly_errors, stderr, stdout
from agentladder.data.io import atomic_write_text, iter_json_lines

guard_app = typer.Typer(no_args_is_help=True, help="Guardrails: PII masking, denied topics, prompt injection.")

PolicyOption = Annotated[str, typer.Option(help="The guard policy (guard.yaml).")]
NerOption = Annotated[str | None, typer.Option(help="NER back end instead of the policy's: presidio, minilm, both, none.")]


def _progress(total: int) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=stderr, transient=True)


def _count(path: str) -> int:
    return sum(1 for _ in iter_json_lines(path))


def _run_with_progress(label: str, path: str, fn: Any) -> Any:
    total = _count(path)
    with _progress(total) as bar:
        task = bar.add_task(label, total=total)
        return fn(lambda i: bar.update(task, completed=i))


@guard_app.command("scan")
@friendly_errors
def scan_cmd(policy: PolicyOption, data: Annotated[str, typer.Option(help="JSONL rows with a text each.")],
             out: Annotated[str, typer.Option(help="JSONL of findings and masked texts (written atomically).")],
             ner: NerOption = None) -> None:
    """Every finding (type, character span, score, rule, action), the decision and the masked text of each row."""
    guard = Guard.from_yaml(policy, ner=ner, progress=lambda m: stderr.print(f"[dim]{m}[/]"))
    n = _run_with_progress("scanning", data, lambda tick: scan_file(guard, data, out, progress=tick))
    usage = guard.usage()
    stderr.print(f"[green]done[/]: {n} rows -> {out} ({usage.masked} spans masked, {usage.blocked} rows blocked)")


def _metric(m: dict[str, Any]) -> str:
    if m["value"] is None:
        return "n/a"
    lo, hi = m["ci"]
    return f"{m['value']:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None else f"{m['value']:.3f}"


def print_report(report: dict[str, Any]) -> None:
    """The report of ``guard eval`` as tables."""
    if "pii" in report:
        table = Table("entity", "precision [95% CI]", "recall [95% CI]", "F1", "exact F1", "leak", "gold",
                      title=f"personal data ({report['rows']} rows)")
        for t, v in report["pii"].items():
            table.add_row(t, _metric(v["precision"]), _metric(v["recall"]),
                          f"{v['f1']:.3f}" if v["f1"] is not None else "n/a",
                          f"{v['exact_f1']:.3f}" if v["exact_f1"] is not None else "n/a",
                          f"{v['leak_rate']:.3f}" if v["leak_rate"] is not None else "n/a", str(v["gold"]))
        stdout.print(table)
    for part, title in (("topics", "denied topics"), ("injection", "prompt injection")):
        if part not in report:
            continue
        table = Table("strength", "precision [95% CI]", "recall [95% CI]", "false alarms [95% CI]", "positives",
                      "negatives", title=title)
        for s in STRENGTHS:
            v = report[part][s]
            table.add_row(s, _metric(v["precision"]), _metric(v["recall"]), _metric(v["false_alarm_rate"]),
                          str(v["positives"]), str(v["negatives"]))
        stdout.print(table)
    lat = report["latency_ms"]
    stdout.print(f"latency per row (all three strengths decided from one scan): mean {lat['mean']:.1f} ms, "
                 f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")


@guard_app.command("eval")
@friendly_errors
def eval_cmd(policy: PolicyOption,
             data: Annotated[str, typer.Option(help='Labelled JSONL: {"text", "entities", "topic", "injection"}.')],
             out: Annotated[str | None, typer.Option(help="Also write the report as JSON.")] = None,
             ner: NerOption = None) -> None:
    """Precision, recall and F1 per entity type with 95% CIs; topic and injection figures at each strength."""
    guard = Guard.from_yaml(policy, ner=ner, progress=lambda m: stderr.print(f"[dim]{m}[/]"))
    report = _run_with_progress("evaluating", data, lambda tick: evaluate_file(guard, data, progress=tick))
    print_report(report)
    if out:
        atomic_write_text(out, json.dumps(report, indent=2))
        stderr.print(f"[green]done[/]: report -> {out}")


@guard_app.command("train")
@friendly_errors
def train_cmd(policy: Annotated[str | None, typer.Option(help="Also train the classifiers of this policy's topics.")] = None,
              tagger: Annotated[bool, typer.Option(help="Train the MiniLM name and address tagger too.")] = False) -> None:
    """Build the cached detectors now (they are otherwise built on first use): the injection classifier, the
    topic similarity thresholds, the classifiers of topics with labelled data, and optionally the tagger."""
    say = lambda m: stderr.print(f"[dim]{m}[/]")  # noqa: E731
    detector = load_injection_detector(progress=say)
    stderr.print(f"injection thresholds: {detector.thresholds}")
    stderr.print(f"topic similarity thresholds: {similarity_thresholds(progress=say)}")
    if policy:
        guard = Guard.from_yaml(policy, progress=say)
        if guard.policy.denied_topics:
            guard.topic_detector()
    if tagger:
        MiniLMTagger(progress=say)
    stderr.print(f"[green]done[/]: cached under {guard_home()}")


__all__ = ["guard_app", "print_report"]
