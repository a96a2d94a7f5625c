"""Evaluate the order-review workflow on a seeded set of orders, for one model or several side by side.

    python examples/pharmacy/evaluate.py --model smollm2-135m --model runs/sft1 --n 20

For each order the workflow runs with the model as the parser. An escalated order is
decided by a simulated pharmacist, who supplies the correct parse, and the run resumes.
Reported, per model:

- ``escalation_rate``: orders handed to the pharmacist;
- on the orders the pipeline decided alone: ``accepted_unchanged`` (decision and reasons
  as expected: what a pharmacist would accept unchanged), ``interaction_accuracy``
  (interaction flagged exactly when there is one), ``dose_error_recall`` (dangerous
  doses flagged) and ``dose_false_alarm`` (safe doses flagged);
- ``parse_exact``: parses with all six fields right, over all orders;
- ``final_accuracy``: decisions as expected after the pharmacist's reviews, over all orders;
- seconds per order, and the share of it spent outside model calls.

Every parser trajectory is scored (``score`` = 1 for an exact parse) and given its
target, so ``agentladder traces export --db DB --to sft --where "score >= 1"`` (or
``--to preference`` / ``--to rl``) turns the run into training data.
The formulary limits are illustrative for a synthetic benchmark, not clinical guidance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from orders import make_orders  # noqa: E402
from pharmacy import NOTE, build_review  # noqa: E402

from agentladder.agents import ReviewQueue, Runtime  # noqa: E402
from agentladder.tasks.medication.task import FIELDS, field_correct  # noqa: E402


def _kinds(reasons: list[str]) -> set[str]:
    return {r.split(":", 1)[0] for r in reasons}


def evaluate(model: Any, orders: list[dict[str, Any]], *, runtime: Runtime, shots: int = 0,
             max_new_tokens: int = 96, tools: list[Any] | None = None) -> dict[str, Any]:
    """Run every order through the workflow with ``model``; the figures of the module docstring, and per-order rows.

    ``tools``: the checks from elsewhere (``mcp_tools(...)``, ``signed_tools(...)``) instead of in process.
    """
    flow = build_review(model, shots=shots, max_new_tokens=max_new_tokens, tools=tools)
    model_name = model if isinstance(model, str) else getattr(model, "name", "model")
    queue = ReviewQueue(runtime.store)
    rows = []
    for order in orders:
        start = time.perf_counter()
        given = {k: order[k] for k in ("id", "patient", "prescription")}
        session = f"{model_name}/{order['id']}"
        result = flow.run(given, session=session, runtime=runtime)
        escalated = result.paused
        reasons = [r.reason for r in result.reviews]
        if escalated:  # the simulated pharmacist corrects the parse; the run carries on from there
            for review in result.reviews:
                queue.decide(review.id, order["target"], reviewer="pharmacist (simulated)")
            result = flow.resume(result.run_id, runtime=runtime)
        seconds = time.perf_counter() - start
        parses = runtime.store.trajectories(run_id=result.run_id, agent="parser")
        model_seconds = sum(s["end_ns"] - s["start_ns"] for s in runtime.store.spans(session=session)
                            if s["name"].startswith("chat ") and s["start_ns"] and s["end_ns"]) / 1e9
        parse = parses[-1]["conversation"].metadata.get("output") if parses and parses[-1]["status"] == "ok" else None
        exact = parse is not None and all(field_correct(f, parse.get(f), order["target"][f]) for f in FIELDS)
        for p in parses:
            runtime.store.annotate(p["id"], rewards={"score": float(exact)}, metadata={"target": order["target"]})
        decision = result.output
        rows.append({"id": order["id"], "expected": order["expected"], "escalated": escalated,
                     "escalation_reasons": reasons, "decision": decision.decision,
                     "reasons": decision.reasons, "parse": parse, "parse_exact": exact,
                     "seconds": seconds, "model_seconds": model_seconds, "run_id": result.run_id})
    return {"metrics": metrics(rows), "rows": rows}


def _share(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    alone = [r for r in rows if not r["escalated"]]
    dangerous = [r for r in alone if "dose" in r["expected"]["reasons"]]
    safe = [r for r in alone if "dose" not in r["expected"]["reasons"]]
    return {
        "orders": len(rows),
        "escalation_rate": _share([r["escalated"] for r in rows]),
        "decided_alone": len(alone),
        "accepted_unchanged": _share([r["decision"] == r["expected"]["decision"]
                                      and _kinds(r["reasons"]) == set(r["expected"]["reasons"]) for r in alone]),
        "interaction_accuracy": _share([("interaction" in _kinds(r["reasons"]))
                                        == ("interaction" in r["expected"]["reasons"]) for r in alone]),
        "dose_error_recall": _share(["dose" in _kinds(r["reasons"]) for r in dangerous]),
        "dose_false_alarm": _share(["dose" in _kinds(r["reasons"]) for r in safe]),
        "parse_exact": _share([r["parse_exact"] for r in rows]),
        "final_accuracy": _share([r["decision"] == r["expected"]["decision"] for r in rows]),
        "seconds_per_order": _share([r["seconds"] for r in rows]),
        "model_share_of_time": (sum(r["model_seconds"] for r in rows) / sum(r["seconds"] for r in rows)
                                if rows else None),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", required=True,
                    help="parser model: alias, run folder (LoRA or full) or openai:MODEL[@URL]; repeat to compare")
    ap.add_argument("--n", type=int, default=20, help="orders")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shots", type=int, default=0, help="few-shot examples in the parser's prompt")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--db", default="runs/pharmacy/agents.db", help="the runtime's SQLite store (traces, reviews)")
    ap.add_argument("--out", default=None, help="write metrics and per-order rows as JSON here")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    orders = make_orders(args.n, args.seed)
    runtime = Runtime(args.db)
    results = {}
    for model in args.model:
        results[model] = evaluate(model, orders, runtime=runtime, shots=args.shots,
                                  max_new_tokens=args.max_new_tokens)
    runtime.shutdown()
    table = Table("metric", *args.model, title=f"order review: {args.n} orders, seed {args.seed}, {args.shots} shots")
    for name in results[args.model[0]]["metrics"]:
        cells = []
        for model in args.model:
            v = results[model]["metrics"][name]
            cells.append("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        table.add_row(name, *cells)
    console = Console()
    console.print(table)
    console.print(NOTE)
    console.print(f"traces in {args.db}: agentladder traces list --db {args.db}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
