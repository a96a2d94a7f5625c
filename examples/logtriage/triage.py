"""Triage a stream of log events through the dedup cache and dynamic few-shot, against the model alone.

    python examples/logtriage/triage.py --model smollm2-135m --events 500 --out runs/logtriage-example
    python examples/logtriage/triage.py --model runs/cls1 --events 500 --out runs/logtriage-cls

1. **Chooses the cache's settings on the validation split** (``--validation`` events of the log-triage
   generator, in a seeded order): the overlap tier's masking and the overlap and semantic thresholds
   (:func:`dedup.choose_thresholds`: the lowest threshold whose hits agree with the true label at least
   ``--min-precision`` of the time). No model runs for this.
2. **Builds the few-shot store** from ``--store`` labelled events of the train split.
3. **Triage the stream**, ``--events`` events of the test split in a seeded order (the generator's noisy
   duplicates among them), one at a time as they would arrive: once through the pipeline (cache, dynamic
   few-shot, model) and once through the model alone (every event a call, the task's fixed examples).
4. **Reports**, for each: model calls made and saved, the hit rate of each tier, how often its hits were
   right and how often the event that answered had the same true label (the cache's own precision, apart
   from the model's errors it repeats), accuracy, macro-F1 and P1 recall (95 % bootstrap intervals), and seconds per event.

The test split is only reported on. Seconds per event are wall time on the machine the script runs on:
take them from an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedup import TIERS, DedupCache, choose_thresholds, minilm_embedder  # noqa: E402
from pipeline import Backend, Decision, FewShotStore, TriagePipeline  # noqa: E402

from agentladder.data.io import atomic_write_text  # noqa: E402
from agentladder.tasks import get_task  # noqa: E402
from agentladder.tasks.task import Parsed, Sample  # noqa: E402

TASK = "log-triage"


def stream(split: str, n: int, seed: int) -> list[Sample]:
    """``n`` generated events of ``split`` in a seeded order (the generator writes a duplicate right after its
    original; a stream spreads them)."""
    rows = get_task(TASK).make(split, n, seed)
    random.Random(f"logtriage-stream:{split}:{seed}").shuffle(rows)
    return rows


def run(pipeline: TriagePipeline, events: list[Sample], name: str, progress: bool) -> list[Decision]:
    decisions = []
    if progress:
        from rich.progress import track

        events_iter = track(events, description=name, transient=True)
    else:
        events_iter = events
    for event in events_iter:
        decisions.append(pipeline.triage(event.input))
    return decisions


def summary(events: list[Sample], decisions: list[Decision], calls: int) -> dict[str, Any]:
    """Calls, hit rates per tier (and how often each tier's hits were right), quality and seconds per event."""
    task = get_task(TASK)
    n = len(events)
    scores = [task.score(e, Parsed(d.label, d.label is not None)) for e, d in zip(events, decisions, strict=True)]
    metrics = task.summarise(events, scores).metrics
    truth = {e.input: e.target for e in events}
    tiers = {}
    for tier in TIERS:
        hits = [(e, d) for e, d in zip(events, decisions, strict=True) if d.tier == tier]
        kept = [truth.get(d.matched or "") == e.target for e, d in hits]
        tiers[tier] = {"hits": len(hits), "rate": len(hits) / n,
                       "right": (sum(d.label == e.target for e, d in hits) / len(hits)) if hits else None,
                       "label_kept": sum(kept) / len(kept) if kept else None}
    seconds = [d.seconds for d in decisions]
    return {"events": n, "model_calls": calls, "calls_saved": n - calls, "saved_share": (n - calls) / n,
            "tiers": tiers, "metrics": {k: m.to_json() for k, m in metrics.items()},
            "seconds_per_event": {"median": statistics.median(seconds), "mean": statistics.fmean(seconds),
                                  "p95": sorted(seconds)[int(0.95 * (n - 1))], "total": sum(seconds)}}


def _metric(m: dict[str, Any]) -> str:
    if m.get("value") is None:
        return "-"
    ci = m.get("ci")
    return f"{m['value']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] is not None else "")


def table(report: dict[str, Any]) -> str:
    """The report as a markdown table, one column per configuration."""
    runs = report["runs"]
    names = list(runs)
    lines = ["| | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]

    def row(label: str, cell) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(runs[n]) for n in names) + " |")

    row("events", lambda r: str(r["events"]))
    row("model calls", lambda r: str(r["model_calls"]))
    row("calls saved", lambda r: f"{r['calls_saved']} ({r['saved_share']:.1%})")
    for tier in TIERS:
        row(f"{tier} tier hits (right; same true label as the event matched)",
            lambda r, t=tier: "-" if not r["tiers"][t]["hits"] else
            f"{r['tiers'][t]['hits']} = {r['tiers'][t]['rate']:.1%} ({r['tiers'][t]['right']:.0%}; "
            f"{r['tiers'][t]['label_kept']:.0%})")
    for metric in ("accuracy", "macro_f1", "p1_recall"):
        row(metric, lambda r, m=metric: _metric(r["metrics"].get(m, {})))
    row("seconds / event (median, mean)", lambda r: f"{r['seconds_per_event']['median']:.3f}, "
        f"{r['seconds_per_event']['mean']:.3f}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The script's options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m", help="model spec: alias, run folder or classifier folder")
    ap.add_argument("--events", type=int, default=500, help="events in the stream (test split)")
    ap.add_argument("--validation", type=int, default=400, help="validation events that choose the thresholds")
    ap.add_argument("--store", type=int, default=1000, help="labelled train events for dynamic few-shot")
    ap.add_argument("--k", type=int, default=3, help="examples retrieved per model call (generative models)")
    ap.add_argument("--min-precision", type=float, default=0.95,
                    help="a tier's hits must agree with the true label this often on validation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-alone", action="store_true", help="skip the model-alone run")
    ap.add_argument("--out", default="runs/logtriage-example", help="folder for report.json and report.md")
    ap.add_argument("--quiet", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the script (see the module docstring); returns the report."""
    args = parser().parse_args(argv)
    progress = not args.quiet

    embed = minilm_embedder()
    val = stream("validation", args.validation, args.seed)
    thresholds = choose_thresholds([s.input for s in val], [s.target for s in val], embed,
                                   min_precision=args.min_precision)
    store = FewShotStore(get_task(TASK).make("train", args.store, args.seed), embed)
    events = stream("test", args.events, args.seed)

    backend = Backend(args.model)
    runs: dict[str, dict[str, Any]] = {}
    all_decisions: dict[str, list[Decision]] = {}
    try:
        backend.calls = 0
        cached = TriagePipeline(backend, cache=DedupCache(thresholds, embed), store=store, k=args.k)
        all_decisions["pipeline"] = run(cached, events, "cache + few-shot + model", progress)
        runs["pipeline"] = summary(events, all_decisions["pipeline"], backend.calls)
        if not args.no_alone:
            backend.calls = 0
            fixed = get_task(TASK).select_shots(args.k) if backend.generative else []
            alone = TriagePipeline(backend, fixed_shots=fixed)
            all_decisions["model alone"] = run(alone, events, "model alone", progress)
            runs["model alone"] = summary(events, all_decisions["model alone"], backend.calls)
    finally:
        backend.close()

    report = {"model": args.model, "generative": backend.generative, "k": args.k if backend.generative else 0,
              "seed": args.seed, "stream": f"{args.events} events of the test split",
              "store": args.store, "thresholds": {"mask": thresholds.mask, "overlap": thresholds.overlap,
                                                  "semantic": thresholds.semantic, "chosen": thresholds.chosen},
              "runs": runs}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    th = report["thresholds"]
    md = (f"# Log triage through the dedup cache: {args.model}\n\n"
          f"Thresholds chosen on {args.validation} validation events ({th['chosen']['configurations_tried']} "
          f"configurations, hits agreeing >= {args.min_precision:.0%}): overlap mask {th['mask']}, overlap "
          f"{th['overlap']}, semantic {th['semantic']}.\n\n{table(report)}\n")
    atomic_write_text(out / "report.md", md)
    rows = [{"id": e.id, "label": e.target, **{name: {"answer": d[i].label, "tier": d[i].tier}
                                                for name, d in all_decisions.items()}}
            for i, e in enumerate(events)]
    atomic_write_text(out / "decisions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    print(md)
    return report


if __name__ == "__main__":
    main()
