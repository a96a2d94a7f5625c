"""What an RL run's reviewer decided, step by step and by kind of order: where a run drifts or collapses.

    python examples/pharmacy/decisions_by_step.py --episodes runs/review-rl/episodes.jsonl --orders orders-train.jsonl

Agent RL's ``episodes.jsonl`` keeps every sampled episode with its output. This counts, for each
step, the decisions sampled on each kind of order (``safe``, ``dose``: dangerous by its dose
alone, ``interaction``; ``none``: no decision). A reviewer that reads its checks flags ``dose``
and ``interaction`` orders and approves ``safe`` ones; one that moves them together (every order
flagged, or every dose-only order approved) has learnt a bias, not the check. No model is loaded.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from review import KINDS, episode_decision, order_kind, orders_by_id  # noqa: E402

from agentladder.errors import DataError  # noqa: E402
from agentladder.train.agent_episodes import read_episodes  # noqa: E402

DECISIONS = ("approve", "flag", "escalate", "none")


def decisions_by_step(episodes: str | Path, orders: dict[str, dict[str, Any]]) -> dict[int, dict[str, Counter]]:
    """``{step: {kind: Counter(decision)}}`` over the episodes of tasks in ``orders``."""
    out: dict[int, dict[str, Counter]] = {}
    for where, episode in read_episodes(episodes):
        order = orders.get(episode.task_id)
        if order is None:
            continue
        decision = episode_decision(episode)
        decision = decision if decision in DECISIONS else "none"
        out.setdefault(int(where.get("step", 0)), {}).setdefault(order_kind(order), Counter())[decision] += 1
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", required=True, help="an agent RL run's episodes.jsonl")
    ap.add_argument("--orders", required=True, help="the task file the run trained on (the orders' kinds)")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    try:
        orders = orders_by_id(args.orders)
        steps = decisions_by_step(args.episodes, orders)
    except (DataError, OSError) as err:
        raise SystemExit(str(err)) from err
    table = Table("step", *KINDS, title=f"sampled decisions in {args.episodes}",
                  caption="each cell: approve / flag / escalate / no decision")
    for step in sorted(steps):
        table.add_row(str(step), *(" / ".join(str(steps[step].get(kind, Counter())[d]) for d in DECISIONS)
                                   if kind in steps[step] else "-" for kind in KINDS))
    Console().print(table)


if __name__ == "__main__":
    main()
