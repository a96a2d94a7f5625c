import pytest
from pydantic import BaseModel

from agentladder.agents import (
    Agent,
    Graph,
    ReviewError,
    ReviewQueue,
    Runtime,
    ScriptedChat,
    Workflow,
)


def test_session_state_is_isolated(rt):
    def remember(x, ctx):
        ctx.session.set("count", ctx.session.get("count", 0) + 1)
        ctx.session.set("last", x)
        return ctx.session.all()

    flow = Workflow().step("remember", remember)
    flow.run("a1", session="A", runtime=rt)
    b = flow.run("b1", session="B", runtime=rt)
    a = flow.run("a2", session="A", runtime=rt)
    assert a.output == {"count": 2, "last": "a2"}
    assert b.output == {"count": 1, "last": "b1"}
    assert rt.session("B").all() == {"count": 1, "last": "b1"}


class Decision(BaseModel):
    decision: str
    reason: str = ""


def _review_flow(decide_calls):
    parser = Agent(ScriptedChat([], default="not json"), output=Decision, max_retries=0, escalate_invalid=True,
                   name="parser")

    def decide(parsed: Decision) -> Decision:
        decide_calls.append(parsed)
        return Decision(decision=f"final:{parsed.decision}")

    return (Workflow("review-me").step("lookup", lambda order: order["id"])
            .step("parse", parser).step("decide", decide, after="parse"))


def test_pause_on_review_and_resume_with_the_decision(tmp_path):
    db = tmp_path / "agents.db"
    calls = []
    rt = Runtime(db)
    result = _review_flow(calls).run({"id": "o-1"}, session="order-1", runtime=rt)
    assert result.status == "paused" and result.paused
    assert result.outputs == {"lookup": "o-1"}  # the sibling finished; nothing after the escalation ran
    (review,) = result.reviews
    assert review.step == "parse" and review.reason.startswith("invalid output")
    assert review.payload["output"] == "not json"
    queue = ReviewQueue(rt.store)
    assert [r.id for r in queue.pending(session="order-1")] == [review.id]
    assert queue.pending(session="another") == []
    flow = _review_flow(calls)
    with pytest.raises(ReviewError, match="waits for review"):
        flow.resume(result.run_id, runtime=rt)
    rt.shutdown()

    # a pharmacist decides later, in another process: a fresh runtime on the same file
    rt2 = Runtime(db)
    ReviewQueue(rt2.store).decide(review.id, {"decision": "approve", "reason": "checked"}, reviewer="pharmacist")
    with pytest.raises(ReviewError, match="already decided by pharmacist"):
        ReviewQueue(rt2.store).decide(review.id, {"decision": "flag"})
    done = flow.resume(result.run_id, runtime=rt2)
    assert done.status == "done" and done.run_id == result.run_id
    assert calls == [Decision(decision="approve", reason="checked")]  # typed back from the stored JSON
    assert done.output == Decision(decision="final:approve") and done.outputs["lookup"] == "o-1"
    with pytest.raises(ValueError, match="is done, not paused"):
        flow.resume(result.run_id, runtime=rt2)
    events = [(a["step"], a["event"]) for a in rt2.store.audit_log(run_id=result.run_id)]
    # lookup and parse ran side by side, so only each one's own entries have a fixed order
    assert [e for e in events if e[0] == "lookup"] == [("lookup", "step_started"), ("lookup", "step_finished")]
    assert [e for e in events if e[0] != "lookup"] == [
        (None, "run_started"), ("parse", "step_started"), ("parse", "model_call"), ("parse", "escalated"),
        (None, "run_paused"), ("parse", "review_decided"), (None, "run_resumed"), ("decide", "step_started"),
        ("decide", "step_finished"), (None, "run_finished"),
    ]
    decided = next(a for a in rt2.store.audit_log(run_id=result.run_id) if a["event"] == "review_decided")
    assert decided["data"]["reviewer"] == "pharmacist"
    rt2.shutdown()


def test_step_escalates_through_ctx(rt):
    def check(x, ctx):
        if x > 10:
            ctx.escalate("too large", {"x": x})
        return x

    flow = Workflow("w").step("check", check).step("after", lambda x: x * 2, after="check")
    paused = flow.run(50, runtime=rt)
    assert paused.status == "paused" and paused.reviews[0].payload == {"x": 50}
    ReviewQueue(rt.store).decide(paused.reviews[0].id, 10)
    assert flow.resume(paused.run_id, runtime=rt).output == 20
    assert flow.run(3, runtime=rt).output == 6


def test_graph_pauses_and_resumes(rt):
    def gate(state, ctx):
        if "approved" not in state:
            ctx.escalate("needs sign-off")
        return {"gate": "passed"}

    g = (Graph("sign-off").node("prepare", lambda s: {"n": 1}).node("gate", gate)
         .node("finish", lambda s: {"done": s["approved"]}).edge("prepare", "gate").edge("gate", "finish"))
    paused = g.run({}, runtime=rt)
    assert paused.status == "paused" and paused.output == {"n": 1}
    ReviewQueue(rt.store).decide(paused.reviews[0].id, {"approved": "yes"})
    done = g.resume(paused.run_id, runtime=rt)
    assert done.status == "done" and done.output == {"n": 1, "approved": "yes", "done": "yes"}
