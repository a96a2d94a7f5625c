"""What workflows and graphs share: run results, the step context, calling a step, pausing for review."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, TypeAdapter, ValidationError

from agentladder.agents import tracing as sc
from agentladder.agents.agent import Agent
from agentladder.agents.guard.pipeline import Guard, GuardBlocked
from agentladder.agents.jobs import AwaitJob, check_job_reviews, job_reviews, settle_reviews
from agentladder.agents.review import Escalate, Review, ReviewError, ReviewQueue
from agentladder.agents.runtime import (
    RunContext,
    Runtime,
    Session,
    current,
    default_runtime,
    use_context,
)
from agentladder.agents.tools import Tool


class StepError(RuntimeError):
    """A step that failed; the run is marked failed and the step named."""

    def __init__(self, run_id: str, step: str, error: BaseException):
        self.run_id, self.step, self.error = run_id, step, error
        super().__init__(f"run {run_id}: step {step!r} failed: {type(error).__name__}: {error}")


@dataclass
class RunResult:
    """The outcome of a workflow or graph run."""

    run_id: str
    session: str
    status: str
    """``done``, or ``paused`` until the pending reviews are decided and the run resumed."""
    outputs: dict[str, Any]
    """Each finished step's output (for a graph: the final state)."""
    last: str | None = None
    """The step whose output is :attr:`output`."""
    reviews: list[Review] = field(default_factory=list)
    """Reviews the run waits for (when paused)."""
    trajectories: dict[str, str] = field(default_factory=dict)
    """Trajectory id of each agent step."""

    @property
    def output(self) -> Any:
        """The last step's output (a graph's final state)."""
        return self.outputs.get(self.last) if self.last is not None else self.outputs

    @property
    def paused(self) -> bool:
        return self.status == "paused"


class StepContext:
    """Given to a step function that takes a ``ctx`` parameter."""

    def __init__(self, run: RunContext, run_input: Any, outputs: dict[str, Any]):
        self.run_id = run.run_id
        self.step = run.step
        self.input = run_input
        """The run's input."""
        self.outputs = outputs
        """Outputs of the steps finished so far."""
        self.session = Session(run.runtime.store, run.session)
        """This session's persistent state (``get``/``set``); other sessions' state is out of reach."""
        self.runtime = run.runtime

    def escalate(self, reason: str, payload: Any = None) -> None:
        """Hand this step to a person: the run pauses, and resumes with their decision as this step's output."""
        raise Escalate(reason, payload)

    def audit(self, event: str, data: Any = None) -> None:
        """Add an entry of the step's own to the audit log."""
        self.runtime.store.audit(event, session=self.session.id, run_id=self.run_id, step=self.step, data=data)


def guard_value(run: RunContext, step: str | None, value: Any, where: str) -> Any:
    """``value`` with the run's guard applied (its strings masked; a blocked one raises
    :class:`GuardBlocked`), each intervention audited; ``value`` itself when the run has no guard."""
    masked, blocked = _guarded(run, step, value, where)
    if blocked is not None:
        raise blocked
    return masked


def _guarded(run: RunContext, step: str | None, value: Any, where: str) -> tuple[Any, GuardBlocked | None]:
    guard = run.extra.get("guard")
    if guard is None:
        return value, None
    masked, results = guard.check_value(value, where, conversation_id=run.session, raise_blocked=False)
    for r in results:
        run.runtime.store.audit("guard", session=run.session, run_id=run.run_id, step=step, data=r.audit_data())
    blocked = next((r for r in results if r.blocked), None)
    return masked, GuardBlocked(blocked) if blocked is not None else None


def guard_extra(guard: Guard | None) -> dict[str, Any]:
    """A run context's ``extra`` that carries ``guard`` to every step and agent of the run."""
    return {"guard": guard} if guard is not None else {}


def guarded_input(run: RunContext, value: Any) -> tuple[Any, GuardBlocked | None]:
    """A run's input checked by its guard: ``(masked input, None)``, or ``(masked input, the block)``."""
    return _guarded(run, None, value, "input")


def masker(run: RunContext) -> Callable[[str], str] | None:
    """The run's guard as a text-masking function (for error messages that get recorded), or ``None``."""
    guard = run.extra.get("guard")
    if guard is None:
        return None
    return lambda text: guard.check(text, "tool_result", conversation_id=run.session).text


def mask_text(run: RunContext, text: str) -> str:
    mask = masker(run)
    return mask(text) if mask else text


def resolve_runtime(runtime: Runtime | None) -> Runtime:
    if runtime is not None:
        return runtime
    ctx = current()
    return ctx.runtime if ctx is not None else default_runtime()


def output_type(target: Any) -> Any:
    """The declared output type of a step (an agent's ``output``, a function's return hint), or ``Any``."""

    if isinstance(target, Agent):
        return target.output if target.output is not None else str
    if isinstance(target, Tool):
        return target.return_type
    try:
        return get_type_hints(target).get("return", Any)
    except Exception:  # an unresolvable hint only costs the restored type
        return Any


def restore(kind: Any, value: Any) -> Any:
    """A persisted (JSON) output back as its declared type, when it fits; else as stored."""
    if kind is Any or value is None:
        return value
    try:
        return TypeAdapter(kind).validate_python(value)
    except (ValidationError, TypeError, ValueError):
        return value


def takes_ctx(fn: Any) -> bool:
    try:
        return "ctx" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


async def call_target(target: Any, value: Any, ctx: StepContext) -> tuple[Any, str | None]:
    """Run one step's target on ``value``: ``(output, trajectory id if an agent ran)``."""

    if isinstance(target, Agent):
        result = await target.arun(value)
        return result.output, result.trajectory_id
    if isinstance(target, Tool):
        result = await target.call(tool_arguments(target, value))
        if result.error is not None:
            raise RuntimeError(f"tool {target.name}: {result.error}")
        return result.value, None
    kwargs = {"ctx": ctx} if takes_ctx(target) else {}
    if inspect.iscoroutinefunction(target):
        return await target(value, **kwargs), None
    return await asyncio.to_thread(target, value, **kwargs), None


def tool_arguments(t: Tool, value: Any) -> dict[str, Any]:
    """A tool step's arguments: the fields of its input that the tool names (a lone argument takes the input)."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    names = t.argument_names
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k in names}
    if len(names) == 1:
        return {names[0]: value}
    raise ValueError(f"tool step {t.name} needs a mapping with {', '.join(names)}, got {type(value).__name__}")


async def traced_step(runtime: Runtime, run: RunContext, name: str, kind: str, target: Any, value: Any,
                      run_input: Any, outputs: dict[str, Any]) -> tuple[Any, str | None]:
    """A step inside its span, with its audit entries."""
    store = runtime.store
    ctx = RunContext(runtime, run.session, run.run_id, step=name, extra=run.extra)
    attrs = {sc.RUN_ID: run.run_id, sc.STEP: name, sc.CONVERSATION_ID: run.session, sc.WORKFLOW_NAME: kind}
    with use_context(ctx), runtime.tracer.start_as_current_span(
            f"step {name}", attributes=attrs, record_exception=False, set_status_on_exception=False) as span:
        store.audit("step_started", session=run.session, run_id=run.run_id, step=name)
        start = time.perf_counter()
        try:
            out, trajectory = await call_target(target, value, StepContext(ctx, run_input, outputs))
            if not isinstance(target, Agent):  # an agent checked its own answer
                out = guard_value(ctx, name, out, "tool_result")
        except Escalate as esc:
            span.set_attribute("agentladder.escalated", esc.reason)
            raise
        except Exception as err:
            sc.record_error(span, err, masker(run))
            store.audit("step_failed", session=run.session, run_id=run.run_id, step=name,
                        data={"error": mask_text(run, f"{type(err).__name__}: {err}")})
            raise
        store.audit("step_finished", session=run.session, run_id=run.run_id, step=name,
                    data={"seconds": round(time.perf_counter() - start, 6), "output": out, "trajectory": trajectory})
        return out, trajectory


def open_reviews(runtime: Runtime, run: RunContext, escalations: list[tuple[str, Escalate]]) -> list[Review]:
    """A review per escalation; one waiting on a job that has already finished is decided by it at once."""
    queue = ReviewQueue(runtime.store)
    reviews = [queue.open(session=run.session, run_id=run.run_id, step=name, reason=esc.reason,
                          payload=esc.payload) for name, esc in escalations]
    for _, esc in escalations:
        if isinstance(esc, AwaitJob):
            settle_reviews(runtime.store, esc.handle.job)
    return [queue.get(r.id) for r in reviews]


def decided_reviews(runtime: Runtime, run_id: str) -> dict[str, Review]:
    """The decided reviews of a paused run by step; an error naming any still pending."""

    reviews = ReviewQueue(runtime.store).for_run(run_id)
    pending = [r for r in reviews if r.status == "pending"]
    jobs = {r.payload["job"] for r in job_reviews(runtime.store, run_id=run_id)}
    if pending and jobs:
        raise ReviewError(f"run {run_id} waits for job {', '.join(sorted(jobs))} "
                          f"(step {', '.join(r.step for r in pending)}); resume it when the job finishes")
    if pending:
        raise ReviewError(f"run {run_id} waits for review {', '.join(r.id for r in pending)} "
                          f"(step {', '.join(r.step for r in pending)})")
    check_job_reviews(runtime.store, reviews)
    return {r.step: r for r in reviews}


def load_paused(runtime: Runtime, run_id: str, kind: str, name: str) -> dict[str, Any]:
    row = runtime.store.run_get(run_id)
    if row is None:
        raise KeyError(f"no run {run_id!r} in {runtime.store.path}")
    if row["kind"] != kind or row["name"] != name:
        raise ValueError(f"run {run_id} belongs to {row['kind']} {row['name']!r}, not {kind} {name!r}")
    if row["status"] != "paused":
        raise ValueError(f"run {run_id} is {row['status']}, not paused")
    return row
