"""Demonstrations for an SFT reviewer before agent RL: the scripted expert's runs as SFT rows.

    python examples/pharmacy/review_demos.py --n 200 --out reviewer-sft.jsonl --db reviewer-demos.db
    agentladder train sft --model smollm2-135m --data reviewer-sft.jsonl --out runs/review-sft

``--decisions coin`` keeps the expert's tool calls and replaces its decisions with coin flips:
an SFT reviewer that knows the protocol (both checks, then a JSON decision) and nothing of
when to flag, for agent RL to teach the decisions from the reward alone.

The rule reviewer (``review.rule_reviewer``) reviews ``--n`` train orders through the same
workflow agent RL runs (``build_review``, the oracle parse); the runtime stores its runs, and
the reviewer's trajectories are exported as SFT rows (``agentladder traces export --to sft
--where "agent == reviewer"`` does the same from the command line). A stored trajectory holds
the agent's own turns, not the tool instructions a local model without a tool-calling chat
template (SmolLM2) is shown in its system turn; each row gets them here, written as the local
provider writes them, so the SFT prompt is the prompt the reviewer sees when it runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_review import review_metrics, review_orders  # noqa: E402
from orders import make_orders  # noqa: E402
from pharmacy import pick_tools  # noqa: E402
from review import SPLIT_SEEDS, rule_reviewer  # noqa: E402

from agentladder.agents import Runtime  # noqa: E402
from agentladder.agents.export import select, to_sft  # noqa: E402
from agentladder.data import write_jsonl  # noqa: E402
from agentladder.models.providers.toolcalls import with_fallback_tools  # noqa: E402


def reviewer_demos(n: int, out: str | Path, *, db: str = ":memory:", split: str = "train",
                   decide: str = "checks") -> dict:
    """Run the rule reviewer on ``n`` orders of ``split`` and write its trajectories as SFT rows to ``out``
    (``decide="coin"``: its tool calls, with coin-flip decisions; see ``review.rule_reviewer``)."""
    runtime = Runtime(db)
    try:
        rows = review_orders(rule_reviewer(decide=decide), make_orders(n, SPLIT_SEEDS[split]), runtime=runtime)
        specs = [t.to_openai() for t in pick_tools(None).values()]
        convs = [c.model_copy(update={"messages": with_fallback_tools(c.messages, specs)})
                 for c in to_sft(select(runtime.store, "agent == reviewer"))]
    finally:
        runtime.shutdown()
    return {"written": write_jsonl(out, convs), **review_metrics(rows)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="train orders to review")
    ap.add_argument("--out", required=True, help="the SFT rows (JSONL, written atomically)")
    ap.add_argument("--db", default=":memory:", help="the runtime's store for the expert's runs")
    ap.add_argument("--decisions", choices=("checks", "coin"), default="checks",
                    help="checks: the expert's decisions; coin: its tool calls with coin-flip decisions (the "
                         "protocol without the decision, for a reviewer to learn its decisions by RL)")
    args = ap.parse_args(argv)
    print(reviewer_demos(args.n, args.out, db=args.db, decide=args.decisions))


if __name__ == "__main__":
    main()
