"""Resuming a run that paused on a job once the job has finished, wherever the job runs.

A job of a local :class:`~agentladder.agents.JobQueue` on the run's store decides the
run's review itself when it ends (and calls its ``on_finish`` callbacks), so
``flow.resume(run_id)`` works from then on. A job on another server (MCP, signed
endpoint) is polled through the tools that started it: :func:`resume_when_done`
waits for every job the run waits on, records each one's final state in the local
store, decides the reviews, and resumes the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from agentladder.agents._sync import run_sync
from agentladder.agents.jobs import (
    JobError,
    JobSource,
    job_reviews,
    job_row,
    record_remote,
    settle_reviews,
)
from agentladder.agents.runtime import Runtime
from agentladder.agents.steps import RunResult, resolve_runtime


async def aresume_when_done(flow: Any, run_id: str, *, tools: Sequence[Any] = (), runtime: Runtime | None = None,
                            timeout: float | None = None, poll: float = 0.5) -> RunResult:
    """Wait for the jobs a paused run of ``flow`` (a workflow or graph) waits on, then resume it.

    ``tools`` are the tools that started the jobs (``mcp_tools(...)``, ``signed_tools(...)``, job tools);
    a job of a queue on the run's own store needs none. ``timeout`` bounds the wait (``JobError`` after).
    """
    rt = resolve_runtime(runtime)
    sources: dict[str, JobSource] = {t.name: t.job_source for t in tools if getattr(t, "job_source", None)}
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        waiting = job_reviews(rt.store, run_id=run_id)
        if not waiting:
            return await flow.aresume(run_id, runtime=rt)
        for review in waiting:
            job_id, tool = review.payload["job"], review.payload["tool"]
            source = sources.get(tool)
            if source is not None:
                state = await source.job_status(job_id)
                if state.finished:
                    record_remote(rt.store, state)
                    settle_reviews(rt.store, job_id)
            elif job_row(rt.store, job_id) is None:
                raise JobError(f"run {run_id} waits for job {job_id} of {tool!r}, which this store does not hold: "
                               f"pass the tools that started it (tools=...)")
        if end is not None and time.monotonic() > end:
            raise JobError(f"run {run_id} still waits for job {', '.join(r.payload['job'] for r in waiting)} "
                           f"after {timeout:g} s")
        await asyncio.sleep(poll)


def resume_when_done(flow: Any, run_id: str, *, tools: Sequence[Any] = (), runtime: Runtime | None = None,
                     timeout: float | None = None, poll: float = 0.5) -> RunResult:
    """Blocking :func:`aresume_when_done`."""
    return run_sync(aresume_when_done(flow, run_id, tools=tools, runtime=runtime, timeout=timeout, poll=poll))
