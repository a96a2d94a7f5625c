"""Graphs: nodes over a shared state, plain and conditional edges, loops with a bound.

.. code-block:: python

    g = (Graph("draft-review", max_steps=10)
         .node("draft", write_draft)                  # state -> updates (a dict) or None
         .node("critic", critic_agent)                # an Agent: its output lands in state["critic"]
         .edge("draft", "critic")
         .branch("critic", lambda s: "done" if s["critic"].ok else "again", {"again": "draft", "done": END}))
    result = g.run({"topic": "..."})                  # result.output is the final state

The state is a dict. A function node gets it (and ``ctx`` if it asks) and
returns the keys to update; an agent or tool node gets it as input and its
output is stored under the node's name. After a node, its conditional edge
(``branch``: a router returning a route key or a node name) or its plain
edge picks the next node; none means the end. ``max_steps`` bounds the
number of node runs, so a loop that never settles stops with
:class:`GraphLimitError` instead of running forever.

A node that escalates pauses the run; :meth:`Graph.resume` merges the
reviewer's decision into the state (a dict updates it, anything else is
stored under the node's name) and follows the node's edges from there. The
state must be JSON-serialisable to survive a pause (pydantic models come back as dicts).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from agentladder.agents import tracing as sc
from agentladder.agents._sync import run_sync
from agentladder.agents.agent import Agent
from agentladder.agents.guard.pipeline import Guard
from agentladder.agents.review import Escalate
from agentladder.agents.runtime import RunContext, Runtime, use_context
from agentladder.agents.steps import (
    RunResult,
    StepError,
    decided_reviews,
    guard_extra,
    guarded_input,
    load_paused,
    mask_text,
    masker,
    open_reviews,
    resolve_runtime,
    traced_step,
)
from agentladder.agents.store import new_id
from agentladder.agents.tools import Tool

END = "__end__"


class GraphLimitError(RuntimeError):
    """A graph that ran ``max_steps`` nodes without reaching the end."""


class Graph:
    """Nodes, edges and conditional edges over a dict state. See the module docstring."""

    def __init__(self, name: str = "graph", *, max_steps: int = 25, guard: Guard | None = None):
        self.name = name
        self.max_steps = max_steps
        self.guard = guard
        """Masks the initial state and every node's output before they are recorded; agents inside use it."""
        self.nodes: dict[str, Any] = {}
        self.edges: dict[str, str] = {}
        self.branches: dict[str, tuple[Callable[[dict], str], Mapping[str, str] | None]] = {}
        self.entry: str | None = None

    def node(self, name: str, target: Any) -> Graph:
        if name in self.nodes or name == END:
            raise ValueError(f"graph {self.name}: node name {name!r} is taken")
        self.nodes[name] = target
        self.entry = self.entry or name
        return self

    def start(self, name: str) -> Graph:
        """Begin at ``name`` (default: the first node added)."""
        self.entry = name
        return self

    def edge(self, source: str, target: str) -> Graph:
        self._check_source(source)
        self.edges[source] = target
        return self

    def branch(self, source: str, router: Callable[[dict], str], routes: Mapping[str, str] | None = None) -> Graph:
        """After ``source``, go where ``router(state)`` says: a key of ``routes``, or a node name (or ``END``)."""
        self._check_source(source)
        self.branches[source] = (router, routes)
        return self

    def _check_source(self, source: str) -> None:
        if source in self.edges or source in self.branches:
            raise ValueError(f"graph {self.name}: node {source!r} already has an outgoing edge")

    def _check(self) -> None:
        if self.entry is None:
            raise ValueError(f"graph {self.name} has no nodes")
        targets = set(self.edges.values()) | {self.entry} | set(self.edges) | set(self.branches)
        for _, routes in self.branches.values():
            targets |= set((routes or {}).values())
        unknown = sorted(t for t in targets if t != END and t not in self.nodes)
        if unknown:
            raise ValueError(f"graph {self.name}: edges name unknown nodes {unknown}; nodes: {sorted(self.nodes)}")

    def _next(self, node: str, state: dict[str, Any]) -> str:
        if node in self.branches:
            router, routes = self.branches[node]
            key = router(state)
            target = routes.get(key, key) if routes else key
            if target != END and target not in self.nodes:
                raise ValueError(f"graph {self.name}: router after {node!r} chose {key!r}, which is neither a "
                                 f"route ({sorted(routes or {})}) nor a node")
            return target
        return self.edges.get(node, END)

    # -- running ---------------------------------------------------------------------------------

    def run(self, state: Mapping[str, Any] | None = None, *, session: str | None = None,
            runtime: Runtime | None = None) -> RunResult:

        return run_sync(self.arun(state, session=session, runtime=runtime))

    async def arun(self, state: Mapping[str, Any] | None = None, *, session: str | None = None,
                   runtime: Runtime | None = None) -> RunResult:
        self._check()
        rt = resolve_runtime(runtime)
        run = RunContext(rt, session or new_id("session"), new_id("run"), extra=guard_extra(self.guard))
        state, blocked = guarded_input(run, dict(state or {}))
        rt.store.run_create(run.run_id, run.session, "graph", self.name, state)
        rt.store.audit("run_started", session=run.session, run_id=run.run_id, data={"graph": self.name})
        if blocked is not None:
            rt.store.run_update(run.run_id, status="failed", error=str(blocked))
            raise blocked
        return await self._execute(rt, run, state, self.entry, 0, {})

    def resume(self, run_id: str, *, runtime: Runtime | None = None) -> RunResult:

        return run_sync(self.aresume(run_id, runtime=runtime))

    async def aresume(self, run_id: str, *, runtime: Runtime | None = None) -> RunResult:
        rt = resolve_runtime(runtime)
        row = load_paused(rt, run_id, "graph", self.name)
        saved = row["state"]
        state, node = dict(saved["state"]), saved["node"]
        review = decided_reviews(rt, run_id).get(node)
        if review is not None and review.id not in saved.get("applied", []):
            if isinstance(review.decision, dict):
                state.update(review.decision)
            else:
                state[node] = review.decision
        run = RunContext(rt, row["session"], run_id, extra=guard_extra(self.guard))
        rt.store.run_update(run_id, status="running")
        rt.store.audit("run_resumed", session=run.session, run_id=run_id, step=node)
        return await self._execute(rt, run, state, self._next(node, state), saved["steps"],
                                   dict(saved.get("trajectories", {})))

    async def _execute(self, rt: Runtime, run: RunContext, state: dict[str, Any], node: str, steps: int,
                       trajectories: dict[str, str]) -> RunResult:
        attrs = {sc.OPERATION: "invoke_workflow", sc.WORKFLOW_NAME: self.name, sc.CONVERSATION_ID: run.session,
                 sc.RUN_ID: run.run_id}
        with use_context(run), rt.tracer.start_as_current_span(
                f"invoke_workflow {self.name}", attributes=attrs, record_exception=False,
                set_status_on_exception=False) as span:
            while node != END:
                if steps >= self.max_steps:
                    err = GraphLimitError(f"graph {self.name} ran {steps} steps without reaching the end "
                                          f"(max_steps={self.max_steps}); it was about to run {node!r}")
                    rt.store.run_update(run.run_id, status="failed", state={"state": state, "node": node,
                                                                               "steps": steps}, error=str(err))
                    rt.store.audit("run_failed", session=run.session, run_id=run.run_id, step=node,
                                   data={"error": str(err)})
                    sc.record_error(span, err)
                    raise err
                steps += 1
                target = self.nodes[node]
                try:
                    out, trajectory = await traced_step(rt, run, node, self.name, target, dict(state), state, {})
                except Escalate as esc:
                    reviews = open_reviews(rt, run, [(node, esc)])
                    rt.store.run_update(run.run_id, status="paused", state={
                        "state": state, "node": node, "steps": steps, "trajectories": trajectories})
                    rt.store.audit("run_paused", session=run.session, run_id=run.run_id, step=node,
                                   data={"reviews": [r.id for r in reviews]})
                    return RunResult(run.run_id, run.session, "paused", state, None, reviews, trajectories)
                except Exception as err:
                    rt.store.run_update(run.run_id, status="failed", error=mask_text(run, f"{node}: {err}"))
                    sc.record_error(span, err, masker(run))
                    raise StepError(run.run_id, node, err) from err
                if trajectory:
                    trajectories[node] = trajectory
                if _is_function(target):
                    if out is not None and not isinstance(out, Mapping):
                        raise StepError(run.run_id, node, TypeError(
                            f"a function node returns a dict of state updates or None, not {type(out).__name__}"))
                    state.update(out or {})
                else:
                    state[node] = out
                try:
                    node = self._next(node, state)
                except ValueError as err:
                    rt.store.run_update(run.run_id, status="failed", error=f"{node}: {err}")
                    sc.record_error(span, err)
                    raise StepError(run.run_id, node, err) from err
                rt.store.run_update(run.run_id, state={"state": state, "node": node, "steps": steps,
                                                       "trajectories": trajectories})
            rt.store.run_update(run.run_id, status="done")
            rt.store.audit("run_finished", session=run.session, run_id=run.run_id, data={"steps": steps})
        return RunResult(run.run_id, run.session, "done", state, None, [], trajectories)


def _is_function(target: Any) -> bool:

    return not isinstance(target, (Agent, Tool)) and (inspect.isfunction(target) or inspect.ismethod(target)
                                                      or callable(target))
