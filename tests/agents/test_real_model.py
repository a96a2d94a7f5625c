"""The runtime driving the real packaged SmolLM2-135M as the pharmacy parser on two orders (a few short generations)."""

import sys
from pathlib import Path

import pytest

from agentladder.agents import LocalChat, ReviewQueue

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pharmacy"


def test_smollm2_reviews_orders(rt):
    sys.path.insert(0, str(EXAMPLE))
    try:
        from orders import make_orders
        from pharmacy import Decision, build_review
    finally:
        sys.path.remove(str(EXAMPLE))
    model = LocalChat("smollm2-135m")
    model.prepare()
    flow = build_review(model, shots=3, max_new_tokens=64)
    for order in make_orders(2, seed=0):
        given = {k: order[k] for k in ("id", "patient", "prescription")}
        result = flow.run(given, session=order["id"], runtime=rt)
        reviewed = result.paused
        if result.paused:  # an invalid or unsure parse went to the pharmacist
            (review,) = result.reviews
            assert review.step == "parse" and review.reason
            ReviewQueue(rt.store).decide(review.id, order["target"], reviewer="pharmacist")
            result = flow.resume(result.run_id, runtime=rt)
        assert result.status == "done" and isinstance(result.output, Decision)
        # with the right parse (the model's or the pharmacist's) the tools find what the order holds
        parse = result.outputs["parse"]
        if parse.model_dump() == order["target"] or reviewed:
            assert result.output.decision == order["expected"]["decision"]
        chats = [s for s in rt.store.spans(session=order["id"]) if s["name"] == "chat smollm2-135m"]
        assert chats and all(s["attributes"]["gen_ai.usage.output_tokens"] > 0 for s in chats)
        assert all(s["attributes"]["gen_ai.usage.input_tokens"] > 300 for s in chats)  # instructions + 3 shots
    rows = rt.store.trajectories(agent="parser")
    assert len(rows) >= 2 and all(r["model"] == "smollm2-135m" for r in rows)
