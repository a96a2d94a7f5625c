"""Workflows: steps with explicit dependencies, parallel branches, deterministic order ("agents on rails").

.. code-block:: python

    flow = (Workflow("order-review")
            .step("parse", parser)                               # an Agent: its output is the step's
            .step("dose", check_dose, after="parse")             # a Tool: arguments from the parse's fields
            .step("interactions", check_interactions, after="parse")
            .step("decide", decide, after=["dose", "interactions"]))
    result = flow.run(order, session="order-123")

A step is an :class:`~agentladder.agents.Agent`, a :class:`~agentladder.agents.Tool`
or a function (sync or async; it gets ``ctx``, a :class:`StepContext`, when it has a
parameter of that name). Its input is the run's input when it has no dependencies,
the one dependency's output, or ``{name: output}`` for several.

Steps run in layers: every step whose dependencies are done runs at once with
the others of its layer (``asyncio.gather``; sync functions in worker threads),
and results are recorded in declaration order, so a run is reproducible: the
same input and the same model answers give the same outputs and trajectories,
and each step the same audit entries (entries of parallel branches interleave
as they happen). Dependencies must name earlier steps, so a workflow cannot cycle
(loops belong to :class:`~agentladder.agents.Graph`).

A step that escalates pauses the run: its siblings in the layer finish, the
state is saved, a review opens, and :meth:`Workflow.resume` carries on once a
person has decided, taking the decision as that step's output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentladder.agents import tracing as sc
from agentladder.agents._sync import run_sync
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
    output_type,
    resolve_runtime,
    restore,
    traced_step,
)
from agentladder.agents.store import new_id, to_json


@dataclass(frozen=True)
class Step:
    name: str
    target: Any
    after: tuple[str, ...]


class Workflow:
    """A DAG of steps. See the module docstring."""

    def __init__(self, name: str = "workflow", *, guard: Guard | None = None):
        self.name = name
        self.steps: dict[str, Step] = {}
        self.guard = guard
        """Masks the run's input and every step's output before they are recorded; agents inside use it."""

    def step(self, name: str, target: Any, *, after: str | Sequence[str] | None = None) -> Workflow:
        """Add a step that runs after the steps named in ``after`` (earlier steps only)."""
        if name in self.steps:
            raise ValueError(f"workflow {self.name}: a step named {name!r} already exists")
        deps = (after,) if isinstance(after, str) else tuple(after or ())
        unknown = [d for d in deps if d not in self.steps]
        if unknown:
            raise ValueError(f"workflow {self.name}: step {name!r} runs after {', '.join(map(repr, unknown))}, "
                             f"which is not an earlier step (steps so far: {', '.join(self.steps) or 'none'})")
        if not callable(target) and not hasattr(target, "arun"):
            raise TypeError(f"step {name!r}: {target!r} is not an agent, a tool or a function")
        self.steps[name] = Step(name, target, deps)
        return self

    def layers(self) -> list[list[Step]]:
        """Steps grouped by depth: each layer needs only the layers before it."""
        depth: dict[str, int] = {}
        for s in self.steps.values():
            depth[s.name] = 1 + max((depth[d] for d in s.after), default=-1)
        out: list[list[Step]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for s in self.steps.values():
            out[depth[s.name]].append(s)
        return out

    # -- running ---------------------------------------------------------------------------------

    def run(self, input: Any = None, *, session: str | None = None, runtime: Runtime | None = None) -> RunResult:

        return run_sync(self.arun(input, session=session, runtime=runtime))

    async def arun(self, input: Any = None, *, session: str | None = None,
                   runtime: Runtime | None = None) -> RunResult:
        if not self.steps:
            raise ValueError(f"workflow {self.name} has no steps")
        rt = resolve_runtime(runtime)
        run = RunContext(rt, session or new_id("session"), new_id("run"), extra=guard_extra(self.guard))
        input, blocked = guarded_input(run, input)
        rt.store.run_create(run.run_id, run.session, "workflow", self.name, input)
        rt.store.audit("run_started", session=run.session, run_id=run.run_id, data={"workflow": self.name})
        if blocked is not None:
            rt.store.run_update(run.run_id, status="failed", error=str(blocked))
            raise blocked
        return await self._execute(rt, run, input, {}, {})

    def resume(self, run_id: str, *, runtime: Runtime | None = None) -> RunResult:

        return run_sync(self.aresume(run_id, runtime=runtime))

    async def aresume(self, run_id: str, *, runtime: Runtime | None = None) -> RunResult:
        """Carry on a paused run once its reviews are decided; each decision becomes its step's output."""
        rt = resolve_runtime(runtime)
        row = load_paused(rt, run_id, "workflow", self.name)
        decided = decided_reviews(rt, run_id)
        state = row["state"] or {}
        outputs = {k: restore(output_type(self.steps[k].target), v)
                   for k, v in state.get("outputs", {}).items() if k in self.steps}
        for step, review in decided.items():
            if step not in outputs and step in self.steps:
                outputs[step] = restore(output_type(self.steps[step].target), review.decision)
        run = RunContext(rt, row["session"], run_id, extra=guard_extra(self.guard))
        rt.store.run_update(run_id, status="running")
        rt.store.audit("run_resumed", session=run.session, run_id=run_id,
                       data={"reviews": [r.id for r in decided.values()]})
        return await self._execute(rt, run, row["input"], outputs, dict(state.get("trajectories", {})))

    async def _execute(self, rt: Runtime, run: RunContext, input: Any, outputs: dict[str, Any],
                       trajectories: dict[str, str]) -> RunResult:
        attrs = {sc.OPERATION: "invoke_workflow", sc.WORKFLOW_NAME: self.name, sc.CONVERSATION_ID: run.session,
                 sc.RUN_ID: run.run_id}
        last = list(self.steps)[-1]
        with use_context(run), rt.tracer.start_as_current_span(
                f"invoke_workflow {self.name}", attributes=attrs, record_exception=False,
                set_status_on_exception=False) as span:
            for layer in self.layers():
                todo = [s for s in layer if s.name not in outputs]
                results = await asyncio.gather(
                    *(traced_step(rt, run, s.name, self.name, s.target, self._input(s, input, outputs), input,
                                  outputs) for s in todo),
                    return_exceptions=True)
                escalations: list[tuple[str, Escalate]] = []
                failure: tuple[str, BaseException] | None = None
                for s, r in zip(todo, results, strict=True):
                    if isinstance(r, Escalate):
                        escalations.append((s.name, r))
                    elif isinstance(r, BaseException):
                        failure = failure or (s.name, r)
                    else:
                        outputs[s.name], trajectory = r
                        if trajectory:
                            trajectories[s.name] = trajectory
                state = {"outputs": outputs, "trajectories": trajectories}
                if failure is not None:
                    name, err = failure
                    rt.store.run_update(run.run_id, status="failed", state=state,
                                        error=mask_text(run, f"{name}: {err}"))
                    rt.store.audit("run_failed", session=run.session, run_id=run.run_id, step=name)
                    sc.record_error(span, err, masker(run))
                    if isinstance(err, Exception):
                        raise StepError(run.run_id, name, err) from err
                    raise err
                if escalations:
                    reviews = open_reviews(rt, run, escalations)
                    rt.store.run_update(run.run_id, status="paused", state=state)
                    rt.store.audit("run_paused", session=run.session, run_id=run.run_id,
                                   data={"reviews": [r.id for r in reviews]})
                    span.set_attribute("agentladder.status", "paused")
                    return RunResult(run.run_id, run.session, "paused", outputs, last, reviews, trajectories)
                rt.store.run_update(run.run_id, state=state)
            rt.store.run_update(run.run_id, status="done")
            rt.store.audit("run_finished", session=run.session, run_id=run.run_id,
                           data={"output": to_json_safe(outputs.get(last))})
            span.set_attribute("agentladder.status", "done")
        return RunResult(run.run_id, run.session, "done", outputs, last, [], trajectories)

    @staticmethod
    def _input(step: Step, run_input: Any, outputs: dict[str, Any]) -> Any:
        if not step.after:
            return run_input
        if len(step.after) == 1:
            return outputs[step.after[0]]
        return {d: outputs[d] for d in step.after}


def to_json_safe(value: Any) -> Any:
    import json

    return json.loads(to_json(value))
