"""Long-running tool calls: job handles, waiting on them, and runs that pause until a job finishes.

A tool that takes long answers at once with a :class:`JobHandle` (``{"kind":
"agentladder.job", "job": ID, ...}``) instead of its result. The runtime then
polls the job's :class:`JobSource` (the local :class:`~agentladder.agents.JobQueue`,
an MCP server's ``agentladder_job_status`` tool, a signed endpoint's ``/jobs/ID``),
backing off from 50 ms to the handle's ``poll_seconds``:

- the job finishes within the tool's ``job_wait``: its result is the call's result;
- it fails, is cancelled or times out: the model sees ``error: JobFailed: ...``;
- it is still running after ``job_wait``: with ``on_job_overrun="cancel"`` the job is
  cancelled and the model sees ``error: ToolTimeout: ...``; with ``"pause"`` (the
  default) the call raises :class:`AwaitJob`, an :class:`~agentladder.agents.Escalate`,
  so a workflow or graph run pauses exactly as it does for a human review. The
  review it opens is decided by the job itself when it finishes (the queue does it,
  or :func:`resume_when_done` for a job on another server), and resuming the run
  takes the job's result as the step's output. A job that failed fails the run on
  resume, naming the job.

Job states live in the runtime's store (table ``jobs``), so a job, and a run paused
on one, survive a restart of either side.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, PrivateAttr

from agentladder.agents.faults import JobFailed, ToolTimeout
from agentladder.agents.review import Escalate, Review, ReviewQueue
from agentladder.agents.store import Store, to_json
from agentladder.errors import AgentladderError

JOB_KIND = "agentladder.job"
TERMINAL = ("done", "failed", "cancelled", "timed_out")
"""States a job does not leave."""
JobStatus = Literal["pending", "running", "cancelling", "done", "failed", "cancelled", "timed_out"]



class JobError(AgentladderError, RuntimeError):
    """A job that does not exist, or a run that cannot resume because its job failed."""


class JobState(BaseModel):
    """Where a job stands: its status and, once done, its result (as JSON) or error."""

    model_config = ConfigDict(extra="ignore")
    job: str
    tool: str
    status: JobStatus
    result: Any = None
    error: str | None = None
    created: float | None = None
    updated: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


class JobSource(Protocol):
    """Where a job's state can be read and its cancellation asked for."""

    async def job_status(self, job_id: str) -> JobState: ...

    async def job_cancel(self, job_id: str) -> JobState: ...


class JobHandle(BaseModel):
    """What a long-running tool answers at once: the job to wait for."""

    model_config = ConfigDict(extra="ignore")
    kind: Literal["agentladder.job"] = JOB_KIND
    job: str
    tool: str
    status: JobStatus = "pending"
    poll_seconds: float = 1.0
    """The longest pause between two polls."""
    _source: JobSource | None = PrivateAttr(default=None)

    def bind(self, source: JobSource) -> JobHandle:
        """This handle, polled through ``source``."""
        self._source = source
        return self

    @property
    def source(self) -> JobSource:
        if self._source is None:
            raise JobError(f"job {self.job}: no source to poll it from (a handle must be bound to one)")
        return self._source

    @classmethod
    def parse(cls, value: Any) -> JobHandle | None:
        """A handle from a remote result (``{"kind": "agentladder.job", ...}``), or None for any other value."""
        if isinstance(value, dict) and value.get("kind") == JOB_KIND and isinstance(value.get("job"), str):
            return cls.model_validate(value)
        return None


class AwaitJob(Escalate):
    """Raised when a call's job is still running after ``job_wait``: the run pauses until the job finishes."""

    def __init__(self, handle: JobHandle):
        super().__init__(f"waiting for job {handle.job} ({handle.tool})",
                         {"kind": JOB_KIND, "job": handle.job, "tool": handle.tool})
        self.handle = handle


def is_job_handle(value: Any) -> bool:
    return isinstance(value, JobHandle)


async def wait_for_job(tool: Any, handle: JobHandle) -> Any:
    """Poll ``handle`` until its job ends or ``tool.job_wait`` runs out, then apply ``tool.on_job_overrun``."""
    deadline = None if tool.job_wait is None else time.monotonic() + tool.job_wait
    delay = min(0.05, handle.poll_seconds)
    while True:
        state = await handle.source.job_status(handle.job)
        if state.status == "done":
            return state.result
        if state.finished:
            raise JobFailed(f"job {state.job} of {state.tool} {state.status.replace('_', ' ')}"
                            + (f": {state.error}" if state.error else ""))
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            if tool.on_job_overrun == "cancel":
                await handle.source.job_cancel(handle.job)
                raise ToolTimeout(f"job {handle.job} of {tool.name} did not finish within {tool.job_wait:g} s; "
                                  "it was cancelled")
            raise AwaitJob(handle)
        await asyncio.sleep(delay if left is None else min(delay, left))
        delay = min(delay * 2, handle.poll_seconds)


# -- the jobs table ------------------------------------------------------------------------------


def job_row(store: Store, job_id: str) -> JobState | None:
    rows = store.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
    if not rows:
        return None
    r = rows[0]
    return JobState(job=r["id"], tool=r["tool"], status=r["status"],
                    result=json.loads(r["result"]) if r["result"] is not None else None, error=r["error"],
                    created=r["created"], updated=r["updated"])


def record_remote(store: Store, state: JobState) -> None:
    """Keep a remote job's last known state in the local store (what a resumed run reads)."""
    now = time.time()
    with store.transaction() as db:
        db.execute("INSERT INTO jobs (id, tool, arguments, status, result, error, origin, created, updated) "
                   "VALUES (?, ?, '{}', ?, ?, ?, 'remote', ?, ?) ON CONFLICT(id) DO UPDATE SET status = "
                   "excluded.status, result = excluded.result, error = excluded.error, updated = excluded.updated",
                   (state.job, state.tool, state.status, to_json(state.result), state.error, now, now))


def job_reviews(store: Store, job_id: str | None = None, *, run_id: str | None = None) -> list[Review]:
    """Pending reviews opened by runs paused on a job (that job, or any job of that run)."""
    queue = ReviewQueue(store)
    reviews = queue.for_run(run_id) if run_id is not None else queue.pending()
    return [r for r in reviews if r.status == "pending" and isinstance(r.payload, dict)
            and r.payload.get("kind") == JOB_KIND and (job_id is None or r.payload.get("job") == job_id)]


def settle_reviews(store: Store, job_id: str) -> list[Review]:
    """Decide the reviews waiting on a finished job: its result (or, if it failed, nothing) is the decision."""
    state = job_row(store, job_id)
    if state is None or not state.finished:
        return []
    queue = ReviewQueue(store)
    note = "job done" if state.status == "done" else f"job {state.status}: {state.error or ''}".strip()
    decision = state.result if state.status == "done" else None
    return [queue.decide(r.id, decision, reviewer=f"job {job_id}", note=note) for r in job_reviews(store, job_id)]


def check_job_reviews(store: Store, reviews: list[Review]) -> None:
    """Refuse to resume past a job that did not finish well (the run is marked failed, the job named)."""
    for r in reviews:
        if not (isinstance(r.payload, dict) and r.payload.get("kind") == JOB_KIND):
            continue
        if r.reviewer != f"job {r.payload['job']}":
            continue  # a person decided it: their decision stands
        state = job_row(store, r.payload["job"])
        if state is None or state.status != "done":
            why = f"{state.status}: {state.error}" if state is not None else "unknown to this store"
            message = f"run {r.run_id}: step {r.step!r} waited for job {r.payload['job']}, which {why}"
            store.run_update(r.run_id, status="failed", error=message)
            raise JobError(message)
