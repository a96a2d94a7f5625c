"""The pharmacy example with its parser served over HTTP gives what it gives in process, order for order."""

import sys
from pathlib import Path

import pytest

from agentladder.agents import Runtime

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pharmacy"


@pytest.fixture(scope="module")
def pharmacy():
    sys.path.insert(0, str(EXAMPLE))
    try:
        import evaluate
        import orders

        yield orders, evaluate
    finally:
        sys.path.remove(str(EXAMPLE))


def _rows(report):
    keep = ("id", "escalated", "escalation_reasons", "decision", "reasons", "parse", "parse_exact")
    return [{k: r[k] for k in keep} for r in report["rows"]]


def test_served_parser_matches_the_in_process_parser(server, pharmacy):
    orders, ev = pharmacy
    batch = orders.make_orders(4, 0)
    runtime = Runtime(":memory:")
    try:
        local = ev.evaluate("tiny", batch, runtime=runtime, max_new_tokens=24)
        served = ev.evaluate(f"openai:tiny@{server.base_url}", batch, runtime=runtime, max_new_tokens=24)
        answers = {}
        for name, report in (("local", local), ("served", served)):
            answers[name] = [[(t["conversation"].messages[-1].content or "").strip() for t in
                              runtime.store.trajectories(run_id=r["run_id"], agent="parser")] for r in report["rows"]]
    finally:
        runtime.shutdown()
    assert _rows(served) == _rows(local)
    assert answers["served"] == answers["local"], "the parser's every answer is the same text"
    skip = {"seconds_per_order", "model_share_of_time"}
    assert {k: v for k, v in served["metrics"].items() if k not in skip} == \
        {k: v for k, v in local["metrics"].items() if k not in skip}
