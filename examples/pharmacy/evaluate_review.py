"""Score the order reviewer (before or after agent RL) on held-out orders, one model or several side by side.

    python examples/pharmacy/evaluate_review.py --model smollm2-135m --model runs/review-rl --split validation --n 40

Each order runs through ``build_review`` (the fixed parser, then the reviewer on the model,
greedy). Reported per model:

- ``decision_accuracy``: decisions as expected (a run that failed counts as wrong);
- ``dangerous_recall``: dangerous orders (a dose over the limit or an interaction to flag) not approved;
- ``escalation_rate``: orders handed to a pharmacist;
- ``tool_call_validity``: the reviewer's tool calls naming a real tool with arguments that validate;
- ``failed``: runs with no decision (invalid answers, too many turns); ``reward``: the mean episode reward.

Choose settings on ``validation``; score ``test`` once, to report. The formulary limits are
illustrative for a synthetic benchmark, not clinical guidance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from orders import make_orders  # noqa: E402
from review import (  # noqa: E402
    SPLIT_SEEDS,
    build_review,
    dangerous,
    decision_reward,
    expected_decision,
    rule_reviewer,
    valid_tool_calls,
)

from agentladder.agents import Runtime  # noqa: E402


def review_orders(model: Any, orders: list[dict[str, Any]], *, runtime: Runtime, parser: str = "oracle",
                  max_new_tokens: int = 96) -> list[dict[str, Any]]:
    """One row per order: the decision (None when the run failed), the error, the reviewer's tool calls."""
    flow = build_review(model, parser=parser, max_new_tokens=max_new_tokens)
    name = model if isinstance(model, str) else getattr(model, "name", "model")
    rows = []
    for order in orders:
        session = f"review/{name}/{order['id']}"
        decision, error = None, None
        try:
            result = flow.run(order, session=session, runtime=runtime)
            decision = result.output.decision if result.output is not None else None
        except Exception as err:  # a failed run is a row, scored as wrong
            error = f"{type(err).__name__}: {err}"
        replies = [m for t in runtime.store.trajectories(session=session, agent="reviewer")
                   for m in t["conversation"].messages if m.role == "assistant"]
        valid, total = valid_tool_calls(replies)
        rows.append({"id": order["id"], "expected": expected_decision(order), "dangerous": dangerous(order),
                     "decision": decision, "error": error, "tool_calls": total, "valid_tool_calls": valid,
                     "reward": decision_reward(order, decision)})
    return rows


def _share(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def review_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    calls = sum(r["tool_calls"] for r in rows)
    return {
        "orders": len(rows),
        "decision_accuracy": _share([r["decision"] == r["expected"] for r in rows]),
        "dangerous_recall": _share([r["decision"] in ("flag", "escalate") for r in rows if r["dangerous"]]),
        "escalation_rate": _share([r["decision"] == "escalate" for r in rows]),
        "tool_call_validity": sum(r["valid_tool_calls"] for r in rows) / calls if calls else None,
        "tool_calls_per_order": calls / max(1, len(rows)),
        "failed": _share([r["decision"] is None for r in rows]),
        "reward": _share([r["reward"] for r in rows]),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", required=True, help="reviewer model: alias or run folder, or rules (the scripted expert); repeat")
    ap.add_argument("--split", choices=list(SPLIT_SEEDS), default="validation",
                    help="validation (choose settings), test (report), train (demonstrations: --model rules --db DB)")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--parser", default="oracle", help="the fixed parser: a model spec, or oracle (the order's parse)")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--db", default=":memory:", help="the runtime's store (traces of the review runs)")
    ap.add_argument("--out", default=None, help="write metrics and rows as JSON here")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    orders = make_orders(args.n, SPLIT_SEEDS[args.split])
    runtime = Runtime(args.db)
    results = {}
    for model in args.model:
        rows = review_orders(rule_reviewer() if model == "rules" else model, orders, runtime=runtime, parser=args.parser, max_new_tokens=args.max_new_tokens)
        results[model] = {"metrics": review_metrics(rows), "rows": rows}
    runtime.shutdown()
    table = Table("metric", *args.model, title=f"order review: {args.n} {args.split} orders, parser {args.parser}")
    for key in results[args.model[0]]["metrics"]:
        values = [results[m]["metrics"][key] for m in args.model]
        table.add_row(key, *("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in values))
    Console().print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
