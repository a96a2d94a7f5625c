import asyncio
import threading
import time

import pytest
from pydantic import BaseModel

from agentladder.agents import (
    END,
    Agent,
    Graph,
    GraphLimitError,
    ScriptedChat,
    StepError,
    Supervisor,
    Workflow,
    tool,
)
from agentladder.data.schema import ToolCall


def test_parallel_branches_run_at_the_same_time(rt):
    # Each branch waits for the other to have started: run one after the other, this would time out.
    started = {"b": asyncio.Event(), "c": asyncio.Event()}

    def branch(me, other):
        async def step(x):
            started[me].set()
            await asyncio.wait_for(started[other].wait(), timeout=5)
            return f"{me}({x})"
        return step

    flow = (Workflow("fan").step("a", lambda x: x + 1)
            .step("b", branch("b", "c"), after="a").step("c", branch("c", "b"), after="a")
            .step("join", lambda d: f"{d['b']}+{d['c']}", after=["b", "c"]))
    result = flow.run(1, runtime=rt)
    assert result.status == "done" and result.output == "b(2)+c(2)"
    assert [[s.name for s in layer] for layer in flow.layers()] == [["a"], ["b", "c"], ["join"]]


def test_sync_steps_run_in_threads_concurrently(rt):
    barrier = threading.Barrier(2, timeout=5)

    def slow(x):
        barrier.wait()  # both sync branches must be inside at once
        return x

    flow = Workflow("threads").step("b", slow).step("c", slow)
    start = time.perf_counter()
    assert flow.run("x", runtime=rt).outputs == {"b": "x", "c": "x"}
    assert time.perf_counter() - start < 5


def test_workflow_is_reproducible(rt):
    def make():
        parser = Agent(ScriptedChat([], default='{"n": 2}'), output=N, name="parser")
        return (Workflow("rails").step("parse", parser)
                .step("double", lambda n: n.n * 2, after="parse").step("square", lambda n: n.n ** 2, after="parse")
                .step("sum", lambda d: d["double"] + d["square"], after=["double", "square"]))

    runs = [make().run("two", runtime=rt) for _ in range(2)]
    assert runs[0].outputs == runs[1].outputs and runs[0].output == 8
    # parallel branches interleave their audit entries; each step's own entries are the same every run
    logs = [sorted((a["step"] or "", a["event"]) for a in rt.store.audit_log(run_id=r.run_id)) for r in runs]
    assert logs[0] == logs[1]
    assert ("parse", "model_call") in logs[0] and ("", "run_finished") in logs[0]
    assert runs[0].trajectories["parse"] != runs[1].trajectories["parse"]


class N(BaseModel):
    n: int


def test_tool_as_step_takes_fields_of_its_input(rt):
    @tool
    def area(width: float, height: float) -> float:
        """Area."""
        return width * height

    flow = Workflow().step("dims", lambda _: {"width": 2, "height": 3, "unit": "m"}).step("area", area, after="dims")
    assert flow.run(None, runtime=rt).output == 6.0


def test_workflow_errors_name_the_step(rt):
    with pytest.raises(ValueError, match="runs after 'missing', which is not an earlier step"):
        Workflow().step("a", lambda x: x, after="missing")
    with pytest.raises(ValueError, match="already exists"):
        Workflow().step("a", lambda x: x).step("a", lambda x: x)

    def broken(x):
        raise ZeroDivisionError("no")

    flow = Workflow("w").step("ok", lambda x: x).step("bad", broken, after="ok")
    with pytest.raises(StepError, match="step 'bad' failed: ZeroDivisionError: no") as info:
        flow.run(1, runtime=rt)
    assert rt.store.run_get(info.value.run_id)["status"] == "failed"


def test_graph_loop_ends_by_condition(rt):
    def draft(state):
        return {"version": state.get("version", 0) + 1}

    critic = Agent(ScriptedChat(["revise", "revise", "ok"]), name="critic")
    g = (Graph("revise", max_steps=10).node("draft", draft).node("critic", critic)
         .edge("draft", "critic").branch("critic", lambda s: s["critic"], {"revise": "draft", "ok": END}))
    result = g.run({"topic": "t"}, runtime=rt)
    assert result.status == "done" and result.output == {"topic": "t", "version": 3, "critic": "ok"}


def test_graph_loop_is_bounded(rt):
    g = Graph("forever", max_steps=5).node("a", lambda s: {"n": s.get("n", 0) + 1}).edge("a", "a")
    with pytest.raises(GraphLimitError, match="ran 5 steps without reaching the end"):
        g.run({}, runtime=rt)


def test_graph_checks_its_edges(rt):
    g = Graph().node("a", lambda s: None).edge("a", "b")
    with pytest.raises(ValueError, match=r"unknown nodes \['b'\]"):
        g.run({}, runtime=rt)
    g = Graph().node("a", lambda s: None).branch("a", lambda s: "nowhere", {"x": END})
    with pytest.raises(StepError, match="step 'a' failed: ValueError: .*router after 'a' chose 'nowhere'") as info:
        g.run({}, runtime=rt)
    assert rt.store.run_get(info.value.run_id)["status"] == "failed"


def test_supervisor_routes_by_the_models_decision(rt):
    billing_model = ScriptedChat(["Refund issued."])
    shipping_model = ScriptedChat(["Parcel arrives Monday."])
    billing = Agent(billing_model, name="billing", description="Payments and refunds.")
    shipping = Agent(shipping_model, name="shipping", description="Deliveries.")

    def route(messages, tools):
        if messages[-1].role == "tool":
            return f"Answer: {messages[-1].content}"
        target = "shipping" if "parcel" in messages[-1].content else "billing"
        return ToolCall(name=target, arguments={"request": messages[-1].content})

    sup = Supervisor(ScriptedChat(route), agents=[billing, shipping])
    result = sup.run("where is my parcel?", runtime=rt)
    assert result.routes == ["shipping"] and result.output == "Answer: Parcel arrives Monday."
    assert len(shipping_model.calls) == 1 and billing_model.calls == []
    offered = {t["function"]["name"]: t["function"]["description"] for t in sup.agent.provider.calls[0].tools}
    assert offered == {"billing": "Payments and refunds.", "shipping": "Deliveries."}
    assert sup.run("refund my order", runtime=rt).routes == ["billing"]


def test_async_api(rt):
    agent = Agent(ScriptedChat(["hi"]))
    flow = Workflow().step("greet", agent).step("shout", lambda s: s.upper(), after="greet")

    async def main():
        return await flow.arun("hello", runtime=rt)

    assert asyncio.run(main()).output == "HI"
