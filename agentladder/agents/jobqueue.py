"""Running long tool calls as jobs whose state lives in the store, so they survive a restart.

.. code-block:: python

    queue = JobQueue(runtime)                      # the runtime's store holds the jobs
    audit = queue.tool(batch_dose_audit)           # calling it starts a job and answers with a handle
    agent = Agent(model, tools=[audit])            # the runtime waits for the job (or pauses the run)

A job is a row of the store's ``jobs`` table: the tool, its arguments, its status
(``pending``, ``running``, ``cancelling``, ``done``, ``failed``, ``cancelled``,
``timed_out``), its result or error. The queue runs jobs on a thread of its own
(``workers`` at a time) and writes a heartbeat for each one it runs. A queue that
starts (in this process or another) claims pending jobs and running jobs whose
heartbeat is older than ``lease`` seconds, whose owner died: so a job interrupted by
a crash or a restart runs again from its arguments (job functions should be safe to
repeat). Claims are single ``UPDATE`` statements, so two queues never run one job.

``cancel`` works from any process (it marks the job ``cancelling``; its queue stops
it within a heartbeat); a job past its ``timeout`` is stopped and marked
``timed_out``. A sync job function runs in a worker thread, which Python cannot
stop: its result is then discarded. When a job ends, the reviews of runs paused on
it are decided with its result and each ``on_finish`` callback is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from agentladder.agents.jobs import JobError, JobHandle, JobState, job_row, settle_reviews
from agentladder.agents.runtime import Runtime
from agentladder.agents.store import Store, new_id, to_json
from agentladder.agents.tools import Tool, as_tool


class JobTool(Tool):
    """A tool whose calls run as jobs of a :class:`JobQueue`: a call answers with a :class:`JobHandle`."""

    def __init__(self, inner: Tool, queue: JobQueue, *, timeout: float | None = None):
        self.__dict__.update(inner.__dict__)
        self.inner = inner
        self.queue = queue
        self.job_source = queue
        self.job_timeout = timeout
        """Seconds the job may run before it is stopped and marked ``timed_out`` (None: no limit)."""
        self.timeout = None  # starting a job is quick; the job's own limit is job_timeout

    async def invoke(self, kwargs: dict[str, Any]) -> Any:
        return self.queue.submit(self.name, kwargs, timeout=self.job_timeout)


class JobQueue:
    """Jobs in a store, run by a background thread. See the module docstring."""

    def __init__(self, store: Store | Runtime | str | os.PathLike, tools: list[Tool] = (), *,
                 workers: int = 4, heartbeat: float = 1.0, lease: float = 10.0, poll_seconds: float = 1.0):
        self.store = store.store if isinstance(store, Runtime) else store if isinstance(store, Store) else Store(store)
        self.workers, self.heartbeat, self.lease, self.poll_seconds = workers, heartbeat, lease, poll_seconds
        self.owner = f"{os.getpid()}-{new_id('queue')}"
        self.tools: dict[str, JobTool] = {}
        self._callbacks: list[Callable[[JobState], Any]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._kick: asyncio.Event | None = None
        for t in tools:
            self.add(t)

    # -- declaring job tools -------------------------------------------------------------------

    def add(self, tool: Tool | Callable[..., Any], *, timeout: float | None = None) -> JobTool:
        """Register a tool (or a typed function) whose calls run as jobs; returns the job tool."""
        job_tool = JobTool(as_tool(tool), self, timeout=timeout)
        self.tools[job_tool.name] = job_tool
        return job_tool

    def tool(self, fn: Callable[..., Any] | None = None, *, name: str | None = None,
             description: str | None = None, timeout: float | None = None) -> Any:
        """Decorator: ``@queue.tool`` or ``@queue.tool(timeout=600)`` makes a function a job tool."""
        def wrap(f: Callable[..., Any]) -> JobTool:
            return self.add(Tool(f, name=name, description=description), timeout=timeout)
        return wrap if fn is None else wrap(fn)

    # -- jobs ----------------------------------------------------------------------------------

    def submit(self, tool: str, arguments: dict[str, Any], *, timeout: float | None = None) -> JobHandle:
        """Queue a job; the handle polls this queue."""
        if tool not in self.tools:
            raise JobError(f"no job tool {tool!r} in this queue (tools: {', '.join(self.tools) or 'none'})")
        job_id, now = new_id("job"), time.time()
        with self.store.transaction() as db:
            db.execute("INSERT INTO jobs (id, tool, arguments, status, deadline, created, updated) "
                       "VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                       (job_id, tool, to_json(arguments), None if timeout is None else now + timeout, now, now))
        self.store.audit("job_submitted", data={"job": job_id, "tool": tool})
        self._poke()
        return JobHandle(job=job_id, tool=tool, poll_seconds=self.poll_seconds).bind(self)

    def get(self, job_id: str) -> JobState:
        state = job_row(self.store, job_id)
        if state is None:
            raise JobError(f"no job {job_id!r} in {self.store.path}")
        return state

    def cancel(self, job_id: str) -> JobState:
        """Ask for a job to stop: a pending one is cancelled at once, a running one by its queue."""
        now = time.time()
        with self.store.transaction() as db:
            db.execute("UPDATE jobs SET status = 'cancelled', error = 'cancelled before it started', updated = ? "
                       "WHERE id = ? AND status = 'pending'", (now, job_id))
            db.execute("UPDATE jobs SET status = 'cancelling', updated = ? WHERE id = ? AND status = 'running'",
                       (now, job_id))
        state = self.get(job_id)
        self.store.audit("job_cancel_requested", data={"job": job_id, "status": state.status})
        if state.finished:
            self._finished(state)
        self._poke()  # the worker stops a running job at its next beat: now
        return state

    def wait(self, job_id: str, timeout: float | None = None) -> JobState:
        """Block until the job ends (or ``timeout`` passes: then its current state)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.get(job_id)
            if state.finished or (end is not None and time.monotonic() >= end):
                return state
            time.sleep(0.02)

    async def job_status(self, job_id: str) -> JobState:
        return self.get(job_id)

    async def job_cancel(self, job_id: str) -> JobState:
        return self.cancel(job_id)

    def on_finish(self, callback: Callable[[JobState], Any]) -> None:
        """Call ``callback(state)`` (in the queue's thread) whenever a job of this store ends here."""
        self._callbacks.append(callback)

    # -- running -------------------------------------------------------------------------------

    def start(self) -> JobQueue:
        """Start the worker thread (also claims jobs left pending or orphaned by a queue that died)."""
        if self._thread is None:
            ready = threading.Event()
            self._thread = threading.Thread(target=self._main, args=(ready,), name="agentladder-jobs", daemon=True)
            self._thread.start()
            ready.wait()
        return self

    def stop(self) -> None:
        """Stop the worker thread; jobs it was running stay ``running`` and are claimed by the next queue."""
        if self._thread is not None:
            self._stopping = True
            self._poke()
            self._thread.join()
        self._thread, self._stopping = None, False

    def _poke(self) -> None:
        """Wake the worker thread (a job was queued, or it should stop)."""
        loop, kick = self._loop, self._kick
        if loop is not None and kick is not None and not loop.is_closed():
            loop.call_soon_threadsafe(kick.set)

    def __enter__(self) -> JobQueue:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _main(self, ready: threading.Event) -> None:
        async def main() -> None:
            self._loop, self._kick = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            await self._serve()
        asyncio.run(main())

    async def _serve(self) -> None:
        running: dict[str, asyncio.Task] = {}
        assert self._kick is not None
        while not self._stopping:
            self._beat(running)
            while len(running) < self.workers:
                claimed = self._claim()
                if claimed is None:
                    break
                job_id, tool, arguments = claimed
                running[job_id] = asyncio.create_task(self._run(job_id, tool, arguments))
            for job_id in [j for j, task in running.items() if task.done()]:
                running.pop(job_id)
            self._kick.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.heartbeat)
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)

    def _claim(self) -> tuple[str, str, dict[str, Any]] | None:
        now, names = time.time(), list(self.tools)
        if not names:
            return None
        marks = ", ".join("?" * len(names))
        with self.store.transaction() as db:
            row = db.execute(
                f"SELECT id, tool, arguments FROM jobs WHERE tool IN ({marks}) AND (status = 'pending' OR "
                f"(status IN ('running', 'cancelling') AND heartbeat < ?)) ORDER BY created LIMIT 1",
                (*names, now - self.lease)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET status = 'running', owner = ?, heartbeat = ?, attempts = attempts + 1, "
                       "updated = ? WHERE id = ?", (self.owner, now, now, row["id"]))
        self.store.audit("job_started", data={"job": row["id"], "tool": row["tool"], "owner": self.owner})
        return row["id"], row["tool"], json.loads(row["arguments"])

    def _beat(self, running: dict[str, asyncio.Task]) -> None:
        """Renew the lease of the jobs run here; stop those cancelled or past their deadline."""
        if not running:
            return
        now, ids = time.time(), list(running)
        marks = ", ".join("?" * len(ids))
        with self.store.transaction() as db:
            db.execute(f"UPDATE jobs SET heartbeat = ? WHERE id IN ({marks}) AND owner = ?", (now, *ids, self.owner))
            rows = db.execute(f"SELECT id, status, deadline FROM jobs WHERE id IN ({marks})", ids).fetchall()
        for r in rows:
            if r["status"] == "cancelling":
                self._end(r["id"], "cancelled", error="cancelled while running")
                running[r["id"]].cancel()
            elif r["deadline"] is not None and now > r["deadline"] and r["status"] == "running":
                self._end(r["id"], "timed_out", error="ran past its timeout")
                running[r["id"]].cancel()

    async def _run(self, job_id: str, tool: str, arguments: dict[str, Any]) -> None:
        try:
            inner = self.tools[tool].inner
            value = await inner.invoke(inner.validate(arguments))
        except asyncio.CancelledError:
            return  # _beat or stop() decided; stop() leaves the job for the next queue
        except Exception as err:
            self._end(job_id, "failed", error=f"{type(err).__name__}: {err}")
        else:
            self._end(job_id, "done", result=value)
        finally:
            self._poke()  # a worker is free: look for the next job now

    def _end(self, job_id: str, status: str, *, result: Any = None, error: str | None = None) -> None:
        with self.store.transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, updated = ? WHERE id = ? AND owner = ? "
                "AND status IN ('running', 'cancelling')",
                (status, to_json(result), error, time.time(), job_id, self.owner)).rowcount
        if changed:
            state = self.get(job_id)
            self.store.audit(f"job_{status}", data={"job": job_id, "tool": state.tool, "error": error})
            self._finished(state)

    def _finished(self, state: JobState) -> None:
        settle_reviews(self.store, state.job)
        for callback in self._callbacks:
            callback(state)
