"""Long-running tool calls as jobs: waiting, cancelling, timeouts, runs that pause on a job, and restarts."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentladder.agents import (
    Agent,
    AwaitJob,
    JobError,
    JobQueue,
    MCPConnection,
    ReviewQueue,
    Runtime,
    ScriptedChat,
    Workflow,
    resume_when_done,
)
from agentladder.data.schema import ToolCall

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ROOT / "tests" / "agents" / "servers"
PHARMACY = ROOT / "examples" / "pharmacy"


def _sleepy(queue, *, timeout=None, **limits):
    @queue.tool(timeout=timeout)
    async def audit(items: list[int], seconds: float = 0.0) -> dict:
        """Sum items slowly.

        Args:
            items: numbers
            seconds: time per item
        """
        for _ in items:
            await asyncio.sleep(seconds)
        return {"total": sum(items), "checked": len(items)}

    for k, v in limits.items():
        setattr(audit, k, v)
    return audit


def test_an_agent_waits_for_a_job(rt):
    with JobQueue(rt, poll_seconds=0.05) as queue:
        audit = _sleepy(queue)
        model = ScriptedChat([ToolCall(name="audit", arguments={"items": [1, 2, 3], "seconds": 0.05}), "done"])
        result = Agent(model, tools=[audit]).run("audit these", runtime=rt)
    assert [m.content for m in result.messages if m.role == "tool"] == ['{"total": 6, "checked": 3}']
    events = [a["event"] for a in rt.store.audit_log()]
    assert events.count("job_submitted") == 1 and "job_done" in events


def test_a_job_past_job_wait_is_cancelled_when_asked(rt):
    with JobQueue(rt, poll_seconds=0.05) as queue:
        audit = _sleepy(queue, job_wait=0.2, on_job_overrun="cancel")
        model = ScriptedChat([ToolCall(name="audit", arguments={"items": [1] * 50, "seconds": 0.1}), "gave up"])
        result = Agent(model, tools=[audit]).run("audit", runtime=rt)
        text = next(m.content for m in result.messages if m.role == "tool")
        assert text.startswith("error: ToolTimeout: job job-") and text.endswith("did not finish within 0.2 s; "
                                                                                   "it was cancelled")
        job_id = text.split()[3]
        assert queue.wait(job_id, timeout=10).status == "cancelled"


def test_a_job_past_its_own_timeout_and_a_failing_job(rt):
    with JobQueue(rt, poll_seconds=0.05, heartbeat=0.05) as queue:
        audit = _sleepy(queue, timeout=0.2)
        slow = queue.submit("audit", {"items": [1] * 50, "seconds": 0.1}, timeout=0.2)
        assert queue.wait(slow.job, timeout=10).status == "timed_out"
        broken = queue.submit("audit", {"items": ["not a number"]})
        state = queue.wait(broken.job, timeout=10)
        assert state.status == "failed" and "items.0" in state.error
        model = ScriptedChat([ToolCall(name="audit", arguments={"items": [1] * 50, "seconds": 0.1}), "ok"])
        text = next(m.content for m in Agent(model, tools=[audit]).run("x", runtime=rt).messages if m.role == "tool")
        assert text.startswith("error: JobFailed: job job-") and text.endswith("of audit timed out: ran past its timeout")


def test_a_workflow_pauses_on_a_job_and_resumes_when_it_finishes(tmp_path):
    runtime = Runtime(tmp_path / "runs.db")
    queue = JobQueue(runtime, poll_seconds=0.05)
    audit = _sleepy(queue, job_wait=0.1)
    flow = (Workflow("audit-flow")
            .step("audit", audit)
            .step("report", lambda out: f"{out['checked']} checked, total {out['total']}", after="audit"))
    finished = []
    queue.on_finish(finished.append)
    paused = flow.run({"items": [4, 5], "seconds": 0.3}, runtime=runtime)
    assert paused.status == "paused" and paused.reviews[0].reason.startswith("waiting for job job-")
    with pytest.raises(Exception, match="waits for job"):
        flow.resume(paused.run_id, runtime=runtime)                  # not finished: refused, still paused
    with queue:                                                      # a queue starts (here: later) and runs it
        done = resume_when_done(flow, paused.run_id, runtime=runtime, timeout=30, poll=0.05)
    assert done.output == "2 checked, total 9" and finished[0].status == "done"
    review = ReviewQueue(runtime.store).for_run(paused.run_id)[0]
    assert review.status == "decided" and review.reviewer.startswith("job ")
    events = [a["event"] for a in runtime.store.audit_log(run_id=paused.run_id)]
    assert events[-4:] == ["run_resumed", "step_started", "step_finished", "run_finished"]


def test_a_run_paused_on_a_failed_job_fails_on_resume(tmp_path):
    runtime = Runtime(tmp_path / "runs.db")
    with JobQueue(runtime, poll_seconds=0.05) as queue:
        audit = _sleepy(queue, job_wait=0.0)
        flow = Workflow("audit-flow").step("audit", audit)
        paused = flow.run({"items": [1, 2], "seconds": 5.0}, runtime=runtime)
        job = paused.reviews[0].payload["job"]
        deadline = time.monotonic() + 20
        while queue.get(job).status != "running" and time.monotonic() < deadline:
            time.sleep(0.02)                                         # cancel it while it runs, not before
        queue.cancel(job)
        queue.wait(job, timeout=20)
    with pytest.raises(JobError, match="waited for job job-.*which cancelled: cancelled while running"):
        flow.resume(paused.run_id, runtime=runtime)
    assert runtime.store.run_get(paused.run_id)["status"] == "failed"


def test_outside_a_workflow_the_agent_raises_await_job(rt):
    with JobQueue(rt, poll_seconds=0.05) as queue:
        audit = _sleepy(queue, job_wait=0.05)
        model = ScriptedChat([ToolCall(name="audit", arguments={"items": [1], "seconds": 2.0}), "x"])
        with pytest.raises(AwaitJob) as err:
            Agent(model, tools=[audit]).run("x", runtime=rt)
        assert err.value.handle.tool == "audit" and queue.wait(err.value.handle.job, 20).status == "done"


def test_a_job_survives_a_queue_that_dies(tmp_path):
    db = tmp_path / "jobs.db"
    first = JobQueue(db, heartbeat=0.05, lease=0.5)
    _sleepy(first)
    first.start()
    handle = first.submit("audit", {"items": [1, 2, 3], "seconds": 0.5})
    while first.get(handle.job).status != "running":
        time.sleep(0.01)
    first.stop()                                    # as if the process died: the job stays "running"
    assert first.get(handle.job).status == "running"
    second = JobQueue(db, heartbeat=0.05, lease=0.5)
    _sleepy(second)
    with second:                                    # claims the job once its lease has run out
        state = second.wait(handle.job, timeout=30)
    assert state.status == "done" and state.result == {"total": 6, "checked": 3}
    rows = second.store.query("SELECT attempts FROM jobs WHERE id = ?", (handle.job,))
    assert rows[0]["attempts"] == 2


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(db, port):
    """`agentladder tools serve examples/pharmacy/tools.py` over HTTP, as its own process."""
    proc = subprocess.Popen([sys.executable, "-m", "agentladder", "tools", "serve", str(PHARMACY / "tools.py"),
                             "--port", str(port), "--db", str(db), "--job-lease", "1"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    end = time.monotonic() + 120
    while time.monotonic() < end:
        assert proc.poll() is None, "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not start")


def test_a_server_restart_in_the_middle_of_a_job(tmp_path, pharmacy_tools):
    """A workflow pauses on the batch dose audit over MCP; the server is killed mid-job and started again."""
    server_db, port = tmp_path / "server.db", _free_port()
    orders = [{"drug": "ibuprofen", "strength_mg": 800, "dose_units": 2, "doses_per_day": 3},
              {"drug": "acetaminophen", "strength_mg": 500, "dose_units": 1, "doses_per_day": 4},
              {"drug": "unobtainium", "strength_mg": 1, "dose_units": 1, "doses_per_day": 1}]
    expected = pharmacy_tools.batch_dose_audit(orders).model_dump()
    proc = _serve(server_db, port)
    runtime = Runtime(tmp_path / "client.db")
    try:
        with MCPConnection(f"http://127.0.0.1:{port}/mcp", timeout=30) as conn:
            audit = conn.tools(include=["batch_dose_audit"], job_wait=0.5)
            flow = Workflow("audit").step("audit", audit[0]).step("flagged", lambda r: r["over_limit"], after="audit")
            paused = flow.run({"orders": orders, "seconds_per_order": 1.0}, runtime=runtime)
            assert paused.status == "paused"
            job_id = paused.reviews[0].payload["job"]
            proc.kill()                                            # mid-job: the audit takes 3 s
            proc.wait(timeout=10)
            proc = _serve(server_db, port)                         # same store, same address
            done = resume_when_done(flow, paused.run_id, tools=audit, runtime=runtime, timeout=120, poll=0.2)
        assert done.outputs["audit"] == expected and done.output == [0]
        rows = Runtime(server_db).store.query("SELECT status, attempts FROM jobs WHERE id = ?", (job_id,))
        assert rows[0]["status"] == "done" and rows[0]["attempts"] == 2
    finally:
        proc.kill()
