"""The agents runtime's own overhead: time per workflow step spent outside model calls.

    python bench/agents.py                     # 200 runs of a 5-step workflow, SQLite file store
    python bench/agents.py --runs 50 --db :memory:

The workflow is the pharmacy order review's shape, five steps over three layers:

    parse (agent, typed output) ─┬─▶ dose (tool) ────────┬─▶ decide (function) ─▶ summary (agent)
                                 └─▶ interactions (tool) ┘

The two agents are backed by a scripted provider that answers at once, so
what is measured is the runtime: building prompts, validating the typed
output and tool arguments, running steps in layers (sync tools in worker
threads), ten OpenTelemetry spans per run (the workflow, each step, and an
agent and a chat span per agent step) written to SQLite, the audit log, the run state saved after each layer, and one trajectory per agent
run. The time inside the provider (its chat spans, which here is tiny) is
subtracted, so the figure is what the runtime adds to any model's latency.

Printed: the median and 90th percentile of ``(run wall time - model time) / 5``
over the timed runs (after ``--warmup``), and the last line
``median_overhead_per_step_ms=<value>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from agentladder.agents import Agent, Runtime, ScriptedChat, Workflow, tool


class Parse(BaseModel):
    drug: str
    strength_mg: float
    dose_units: float
    doses_per_day: float


class Dose(BaseModel):
    daily_mg: float
    over_limit: bool


@tool
def dose(drug: str, strength_mg: float, dose_units: float, doses_per_day: float) -> Dose:
    """Daily dose against a limit."""
    daily = strength_mg * dose_units * doses_per_day
    return Dose(daily_mg=daily, over_limit=daily > 4000)


@tool
def interactions(drug: str) -> list[str]:
    """Known interactions of a drug."""
    return ["warfarin"] if drug == "ibuprofen" else []


def decide(checks: dict) -> dict:
    flagged = checks["dose"].over_limit or bool(checks["interactions"])
    return {"decision": "flag" if flagged else "approve", "daily_mg": checks["dose"].daily_mg}


def build() -> Workflow:
    parser = Agent(ScriptedChat([], default='{"drug": "ibuprofen", "strength_mg": 800, "dose_units": 1, '
                                            '"doses_per_day": 3}', name="scripted-parser"),
                   system="Parse the prescription.", output=Parse, name="parser")
    summary = Agent(ScriptedChat([], default="Flagged: interaction with warfarin.", name="scripted-writer"),
                    system="Summarise the decision.", name="summary")
    return (Workflow("bench-5-steps")
            .step("parse", parser)
            .step("dose", dose, after="parse")
            .step("interactions", interactions, after="parse")
            .step("decide", decide, after=["dose", "interactions"])
            .step("summary", summary, after="decide"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--db", default=None, help="SQLite file (default: a temporary file) or :memory:")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "bench.db")
        runtime = Runtime(db)
        flow = build()
        per_step = []
        for i in range(args.warmup + args.runs):
            start = time.perf_counter()
            result = flow.run("Ibuprofen 800 mg tablet, take 1 three times daily", session=f"s{i}", runtime=runtime)
            wall = time.perf_counter() - start
            assert result.status == "done"
            model = sum(s["end_ns"] - s["start_ns"] for s in runtime.store.spans(session=f"s{i}")
                        if s["name"].startswith("chat ")) / 1e9
            if i >= args.warmup:
                per_step.append((wall - model) / len(flow.steps))
        spans = len(runtime.store.spans(session=f"s{args.warmup}"))
        runtime.shutdown()
    ms = sorted(x * 1000 for x in per_step)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    print(f"store: {'memory' if db == ':memory:' else 'SQLite file'}; {args.runs} timed runs of "
          f"{len(flow.steps)} steps; {spans} spans per run; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"overhead per step: median {statistics.median(ms):.2f} ms, p90 {p90:.2f} ms, "
          f"min {ms[0]:.2f} ms (wall time of a run minus time in model calls, divided by 5)")
    print(f"median_overhead_per_step_ms={statistics.median(ms):.3f}")


if __name__ == "__main__":
    main()
