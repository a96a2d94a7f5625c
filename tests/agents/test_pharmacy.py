"""The pharmacy order-review example, with scripted parsers (the real SmolLM2 is in test_real_model.py)."""

import json
import sys
from pathlib import Path

import pytest

from agentladder.agents import (
    JobQueue,
    LoopbackServer,
    MCPConnection,
    ReviewQueue,
    Runtime,
    ScriptedChat,
    Workflow,
    mcp_http_app,
    mcp_tools,
    resume_when_done,
)
from agentladder.data.io import read_jsonl
from agentladder.data.schema import Conversation, RLPrompt

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pharmacy"


@pytest.fixture(scope="module")
def pharmacy():
    sys.path.insert(0, str(EXAMPLE))
    try:
        import evaluate
        import orders
        import pharmacy

        yield pharmacy, orders, evaluate
    finally:
        sys.path.remove(str(EXAMPLE))


def _oracle(orders_list, wrong=None):
    """A parser that answers each prescription with its target (or a wrong answer for the ids in ``wrong``)."""
    answers = {o["prescription"]: o["target"] for o in orders_list}

    def reply(messages, tools):
        text = messages[-1].content
        if messages[-1].content.startswith("That answer is not valid"):
            text = next(m.content for m in reversed(messages[:-2]) if m.role == "user")
        order = next(o for o in orders_list if o["prescription"] == text)
        if wrong and order["id"] in wrong:
            return wrong[order["id"]]
        return json.dumps(answers[text])

    return ScriptedChat(reply, name="oracle")


def test_tools(pharmacy):
    ph, _, _ = pharmacy
    assert ph.check_dose("acetaminophen", 500, 2, 6) == ph.DoseCheck(daily_mg=6000, max_daily_mg=4000, over_limit=True)
    assert ph.check_dose("unknown", 1, 1, 1).over_limit is None
    assert ph.check_formulary("ibuprofen", 800).listed_strength and not ph.check_formulary("ibuprofen", 900).listed_strength
    found = ph.check_interactions("tramadol", ["Sertraline", "lisinopril"])
    assert [(f.other, f.severity) for f in found] == [("sertraline", "major")]
    assert ph.check_interactions.parameters["properties"]["current_medications"]["type"] == "array"


def test_orders_are_seeded_and_labelled(pharmacy):
    _, orders, _ = pharmacy
    a, b = orders.make_orders(30, 1), orders.make_orders(30, 1)
    assert a == b and a != orders.make_orders(30, 2)
    kinds = {tuple(o["expected"]["reasons"]) for o in a}
    assert ("dose",) in kinds and () in kinds and any("interaction" in k for k in kinds)


def test_review_with_a_perfect_parser(pharmacy, rt):
    _, orders, ev = pharmacy
    batch = orders.make_orders(12, 0)
    report = ev.evaluate(_oracle(batch), batch, runtime=rt)
    m = report["metrics"]
    assert m["escalation_rate"] == 0 and m["accepted_unchanged"] == 1.0 and m["interaction_accuracy"] == 1.0
    assert m["dose_error_recall"] == 1.0 and m["dose_false_alarm"] == 0.0 and m["parse_exact"] == 1.0


def test_escalations_pause_and_the_pharmacist_decides(pharmacy, rt, tmp_path):
    _, orders, ev = pharmacy
    batch = orders.make_orders(6, 0)
    unknown = dict(batch[1]["target"], drug="unobtainium")
    wrong = {batch[0]["id"]: "I am not sure", batch[1]["id"]: json.dumps(unknown)}
    report = ev.evaluate(_oracle(batch, wrong), batch, runtime=rt)
    rows = {r["id"]: r for r in report["rows"]}
    first, second = rows[batch[0]["id"]], rows[batch[1]["id"]]
    assert first["escalated"] and first["escalation_reasons"][0].startswith("invalid output: no JSON object")
    assert second["escalated"] and second["escalation_reasons"] == ["drug 'unobtainium' is not in the formulary"]
    # after the pharmacist's corrected parse, the decision is the expected one
    assert first["decision"] == batch[0]["expected"]["decision"]
    assert report["metrics"]["escalation_rate"] == pytest.approx(2 / 6)
    assert report["metrics"]["final_accuracy"] == 1.0 and ReviewQueue(rt.store).pending() == []
    audit = [a["event"] for a in rt.store.audit_log(run_id=first["run_id"])]
    assert "escalated" in audit and "review_decided" in audit and audit[-1] == "run_finished"

    # the scored trajectories become training data
    from agentladder.agents import export_traces

    assert export_traces(rt.store, "sft", tmp_path / "sft.jsonl", where="score >= 1")["written"] == 4
    sft = read_jsonl(tmp_path / "sft.jsonl", Conversation)
    assert all(c.metadata["agent"] == "parser" and c.messages[-1].is_trained for c in sft)
    export_traces(rt.store, "rl", tmp_path / "rl.jsonl")
    rl = read_jsonl(tmp_path / "rl.jsonl", RLPrompt)
    assert len(rl) == 6 and rl[0].target == batch[0]["target"]


def test_command_line(pharmacy, tmp_path, capsys, monkeypatch):
    _, orders, ev = pharmacy
    batch = orders.make_orders(4, 0)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(ev, "build_review", lambda model, **kw: pharmacy[0].build_review(_oracle(batch), **kw))
    ev.main(["--model", "oracle", "--n", "4", "--db", str(tmp_path / "a.db"), "--out", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "accepted_unchanged" in out and "not clinical guidance" in out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["results"]["oracle"]["metrics"]["orders"] == 4


def _comparable(report):
    return [{k: r[k] for k in ("id", "escalated", "decision", "reasons", "parse", "parse_exact")}
            for r in report["rows"]], {k: v for k, v in report["metrics"].items()
                                        if k not in ("seconds_per_order", "model_share_of_time")}


def test_the_checks_over_mcp_give_the_in_process_results(pharmacy, tmp_path):
    """The order review with the formulary and interaction checks served over MCP, stdio and HTTP."""
    ph, orders, ev = pharmacy
    batch = orders.make_orders(12, 0)
    local = ev.evaluate(_oracle(batch), batch, runtime=Runtime(":memory:"))
    with MCPConnection("python -m formulary_server", cwd=EXAMPLE) as sdk_server:   # the official SDK's server
        over_stdio = ev.evaluate(_oracle(batch), batch, runtime=Runtime(":memory:"), tools=sdk_server.tools())
    served = [ph.check_formulary, ph.check_dose, ph.check_interactions]               # agentladder's server
    with LoopbackServer(mcp_http_app(served, runtime=Runtime(":memory:"))) as server:
        over_http = ev.evaluate(_oracle(batch), batch, runtime=Runtime(":memory:"), tools=mcp_tools(server.url + "/mcp"))
    assert _comparable(over_stdio) == _comparable(local) == _comparable(over_http)
    assert {r["decision"] for r in local["rows"]} == {"approve", "flag"}


def test_the_batch_dose_audit_runs_as_a_job_over_mcp(pharmacy):
    ph, orders, _ = pharmacy
    doses = [dict(o["target"]) for o in orders.make_orders(8, 0)]
    doses = [{k: d[k] for k in ("drug", "strength_mg", "dose_units", "doses_per_day")} for d in doses]
    expected = ph.batch_dose_audit(doses).model_dump()
    server_rt = Runtime(":memory:")
    queue = JobQueue(server_rt, poll_seconds=0.05)
    with queue, LoopbackServer(mcp_http_app([queue.add(ph.batch_dose_audit)], runtime=server_rt)) as server:
        (audit,) = mcp_tools(server.url + "/mcp", job_wait=0.1)
        runtime = Runtime(":memory:")
        flow = Workflow("nightly-audit").step("audit", audit)
        paused = flow.run({"orders": doses, "seconds_per_order": 0.1}, runtime=runtime)
        assert paused.status == "paused"                           # the run waits on the job, like on a review
        done = resume_when_done(flow, paused.run_id, tools=[audit], runtime=runtime, timeout=60, poll=0.05)
    assert done.output == expected and expected["checked"] == 8 and expected["over_limit"]
