"""An agent: a model provider, a system prompt, tools, and optionally a typed output.

``Agent.run`` (or ``await Agent.arun``) loops: ask the model; run the tools it
calls (concurrently, results in call order) and ask again; stop at an answer.
With ``output`` set (a pydantic model, or any type pydantic validates) the
answer's JSON object is validated; on an error the agent shows the model what
is wrong and asks again, at most ``max_retries`` times, then raises
:class:`OutputValidationError` (or, with ``escalate_invalid``, hands the case
to a person). ``review_if`` inspects a valid output and may escalate it too
(a confidence below a threshold, a value out of range).

Every run is a trajectory in the project's schema
(:class:`~agentladder.data.schema.Conversation`): the turns, which are
trainable (an answer that failed validation is not), the tokens used and
where it ran. It is stored with the runtime, traced as an ``invoke_agent``
span with a ``chat`` span per model call and an ``execute_tool`` span per
tool call, and written to the audit log when it runs inside a workflow.

With ``memory=`` a :class:`~agentladder.agents.memory.Memory` (long-term memory) the agent is run for a
user (``run(..., user="ann")``): before the model is asked, the ``memory_k`` facts of that user's
namespace (the user's, or the user's with this agent when ``memory_per_agent``) nearest the input are
put in the system turn; after a successful run the conversation's facts are extracted by the agent's own
model and stored (``learn=False`` turns that off). A later session of the same user sees them; another
user's run never does (each namespace is its own index). ``memory=True`` is the other, short-term
memory: the turns of earlier runs in the same session.

With a ``guard`` (:class:`~agentladder.agents.guard.Guard`, or one inherited from the
workflow or graph it runs in) the input, every answer of the model (its text and the
arguments of its tool calls) and every tool result are checked before anything else
sees them: personal data is masked before a message is kept, stored, traced, audited
or exported; a blocked text raises :class:`~agentladder.agents.guard.GuardBlocked`
(the trajectory is stored, masked, with status ``blocked``); every intervention is an
audit row ``guard`` with the policy and the rule that fired.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from agentladder.agents import tracing as sc
from agentladder.agents._sync import run_sync
from agentladder.agents.guard.pipeline import Guard, GuardBlocked, GuardResult
from agentladder.agents.memory import Extraction, Memory
from agentladder.agents.review import Escalate
from agentladder.agents.runtime import RunContext, Runtime, current, default_runtime, use_context
from agentladder.agents.store import new_id, to_json
from agentladder.agents.tools import Tool, ToolResult, as_tool, format_validation_error
from agentladder.data.schema import Conversation, Message, ToolCall
from agentladder.errors import ConfigError
from agentladder.models.providers import ChatResponse, Usage, chat_provider
from agentladder.models.providers import Provider as ChatProvider
from agentladder.tasks.parsing import extract_json_object


class AgentError(RuntimeError):
    """An agent that could not finish (too many turns, a model that cannot be reached)."""


class OutputValidationError(AgentError):
    """The model's answer stayed invalid after every retry."""

    def __init__(self, agent: str, attempts: int, error: str, output: str):
        self.agent, self.attempts, self.error, self.output = agent, attempts, error, output
        super().__init__(f"agent {agent!r}: no valid output after {attempts} attempts; last error: {error}; "
                         f"last output: {output[:200]!r}")


@dataclass
class AgentResult:
    """What one agent run gave."""

    output: Any
    """The validated output (an instance of ``output``), or the answer's text."""
    messages: list[Message]
    """The whole conversation, system turn first."""
    usage: Usage = field(default_factory=Usage)
    trajectory_id: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    attempts: int = 1
    """Answers the model gave before one was valid (1 = the first)."""
    model_seconds: float = 0.0
    """Time spent inside the model provider."""
    recalled: list[str] = field(default_factory=list)
    """The long-term memory facts put in the context (an agent with ``memory=Memory(...)``)."""
    remembered: Extraction | None = None
    """What the run stored in long-term memory (``None`` without one, or with ``learn=False``)."""


class Agent:
    """A model with a system prompt, tools and an optional output type. See the module docstring.

    ``examples`` are ``(input, output)`` pairs shown as earlier turns (few-shot); ``memory=True`` keeps the
    conversation per session, ``memory=Memory(...)`` recalls and stores a user's facts across sessions
    (the module docstring; ``memory_k``, ``memory_per_agent``, ``learn``); ``max_turns`` bounds the rounds of tool calls, ``max_retries`` the
    corrections of an invalid output; ``guard`` masks and blocks (see the module docstring).
    """

    def __init__(self, model: str | ChatProvider | Any, *, system: str | None = None,
                 tools: Sequence[Tool | Callable[..., Any] | Agent] = (), output: Any = None,
                 name: str | None = None, description: str | None = None, max_retries: int = 2,
                 max_turns: int = 8, max_new_tokens: int = 256, temperature: float = 0.0,
                 output_instructions: bool = True, escalate_invalid: bool = False,
                 review_if: Callable[[Any], str | None] | None = None, memory: bool | Memory = False,
                 examples: Sequence[tuple[Any, Any]] = (), guard: Guard | None = None, memory_k: int = 5,
                 memory_per_agent: bool = False, learn: bool = True):
        self.provider = chat_provider(model)
        self.guard = guard
        """Checks input, answers and tool results (see the module docstring); ``None``: the run's, if any."""
        self.system = system
        self.tools = [as_tool(t) for t in tools]
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"two tools share a name: {names}")
        self.output = output
        self._adapter = TypeAdapter(output) if output is not None else None
        self.name = name or (getattr(output, "__name__", None) and f"{output.__name__.lower()}_agent") or "agent"
        self.description = description
        self.max_retries = max_retries
        self.max_turns = max_turns
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.output_instructions = output_instructions
        self.escalate_invalid = escalate_invalid
        self.review_if = review_if
        self.memory = memory if isinstance(memory, bool) else False
        self.long_term = memory if isinstance(memory, Memory) else None
        """Long-term memory (facts per user across sessions), ``None`` without."""
        self.memory_k, self.memory_per_agent, self.learn = memory_k, memory_per_agent, learn
        self.examples = [
            m for inp, out in examples for m in (
                Message(role="user", content=input_text(inp)),
                Message(role="assistant", content=input_text(out), trainable=False))]
        """Few-shot examples, shown after the system turn as context (never trained on)."""

    # -- running ---------------------------------------------------------------------------------

    def run(self, input: Any, *, session: str | None = None, runtime: Runtime | None = None,
            user: str | None = None) -> AgentResult:
        """Run to an answer (blocking). ``input`` is text, or a value shown to the model as JSON.

        ``user`` names whose long-term memory is read and written (needed with ``memory=Memory(...)``;
        agents this one calls inherit it)."""

        return run_sync(self.arun(input, session=session, runtime=runtime, user=user))

    async def arun(self, input: Any, *, session: str | None = None, runtime: Runtime | None = None,
                   user: str | None = None) -> AgentResult:
        outer = current()
        if outer is not None and session in (None, outer.session) and runtime in (None, outer.runtime):
            ctx = outer
        else:
            ctx = RunContext(runtime or default_runtime(), session or new_id("session"))
        if self.guard is not None and ctx.extra.get("guard") is not self.guard:
            # agents this one calls (as tools, or a supervisor's specialists) run under its guard too
            ctx = RunContext(ctx.runtime, ctx.session, ctx.run_id, ctx.step, {**ctx.extra, "guard": self.guard})
        if user is not None and ctx.extra.get("user") != user:
            ctx = RunContext(ctx.runtime, ctx.session, ctx.run_id, ctx.step, {**ctx.extra, "user": user})
        if self.long_term is not None and not ctx.extra.get("user"):
            raise ConfigError(f"agent {self.name!r} has long-term memory: run it for a user (run(..., user=...))")
        if ctx is outer:
            return await self._run(input, ctx)
        with use_context(ctx):
            return await self._run(input, ctx)

    async def _run(self, input: Any, ctx: RunContext) -> AgentResult:
        tracer = ctx.runtime.tracer
        attrs = {sc.OPERATION: "invoke_agent", sc.AGENT_NAME: self.name, sc.CONVERSATION_ID: ctx.session,
                 sc.REQUEST_MODEL: self.provider.name, sc.PROVIDER: self.provider.provider_name}
        if ctx.run_id:
            attrs[sc.RUN_ID] = ctx.run_id
        if ctx.step:
            attrs[sc.STEP] = ctx.step
        with tracer.start_as_current_span(f"invoke_agent {self.name}", attributes=attrs,
                                          record_exception=False, set_status_on_exception=False) as span:
            trajectory_id = new_id("traj")
            span.set_attribute(sc.TRAJECTORY_ID, trajectory_id)
            checked = self._check(ctx, input_text(input), "input")
            shown = checked.text if checked else input
            recalled = self._recall(shown, ctx)
            state = _RunState(self._prompt(shown, ctx, recalled))
            try:
                if checked is not None and checked.blocked:
                    raise GuardBlocked(checked)
                result = await self._loop(state, ctx)
            except GuardBlocked as err:
                sc.record_error(span, err)
                self._record(ctx, state, trajectory_id, "blocked")
                raise
            except Escalate:
                self._record(ctx, state, trajectory_id, "escalated")
                raise
            except OutputValidationError as err:
                sc.record_error(span, err)
                self._record(ctx, state, trajectory_id, "invalid")
                raise
            except Exception as err:
                sc.record_error(span, err)
                self._record(ctx, state, trajectory_id, "error")
                raise
            span.set_attribute(sc.INPUT_TOKENS, state.usage.input_tokens)
            span.set_attribute(sc.OUTPUT_TOKENS, state.usage.output_tokens)
            result.trajectory_id = self._record(ctx, state, trajectory_id, "ok", output=result.output)
            result.recalled = recalled
            if self.long_term is not None and self.learn:
                result.remembered = await self.long_term.aextract(
                    [state.user, state.messages[-1]], self.provider, **self._namespace(ctx))
            if self.memory:
                ctx.runtime.store.remember(ctx.session, self.name, [state.user, state.messages[-1]])
            return result

    def _namespace(self, ctx: RunContext) -> dict[str, str | None]:
        """The run's long-term memory namespace: its user, and this agent with ``memory_per_agent``."""
        return {"user": ctx.extra["user"], "agent": self.name if self.memory_per_agent else None}

    def _recall(self, input: Any, ctx: RunContext) -> list[str]:
        """The user's long-term facts nearest the input (none without long-term memory)."""
        if self.long_term is None:
            return []
        return [h.text for h in self.long_term.search(input_text(input), k=self.memory_k, **self._namespace(ctx))]

    def _prompt(self, input: Any, ctx: RunContext, recalled: Sequence[str] = ()) -> list[Message]:
        system = self.system or ""
        if self._adapter is not None and self.output_instructions:
            schema = json.dumps(self._adapter.json_schema(), separators=(",", ":"))
            system += ("\n\n" if system else "") + f"Answer with only a JSON object that fits this schema: {schema}"
        if recalled:
            system += ("\n\n" if system else "") + "What you know about the user from earlier conversations:\n"
            system += "\n".join(f"- {fact}" for fact in recalled)
        msgs = [Message(role="system", content=system)] if system else []
        msgs += self.examples
        if self.memory:
            msgs += ctx.runtime.store.memory(ctx.session, self.name)
        msgs.append(Message(role="user", content=input_text(input)))
        return msgs

    async def _loop(self, state: _RunState, ctx: RunContext) -> AgentResult:
        specs = [t.to_openai() for t in self.tools]
        by_name = {t.name: t for t in self.tools}
        calls: list[ToolCall] = []
        attempts = 0
        for _ in range(self.max_turns + self.max_retries):
            response = await self._call_model(state, specs, ctx)
            msg = self._check_answer(ctx, state, response.message)
            if msg.tool_calls:
                state.messages.append(msg)
                calls += msg.tool_calls
                results = await asyncio.gather(*(self._call_tool(c, by_name, ctx) for c in msg.tool_calls),
                                               return_exceptions=True)
                failed = next((r for r in results if isinstance(r, BaseException)), None)
                if failed is not None and not isinstance(failed, GuardBlocked):
                    raise failed
                for c, r in zip(msg.tool_calls, results, strict=True):  # kept masked, also when one was blocked
                    text = r.result.text if isinstance(r, GuardBlocked) else r.text
                    state.messages.append(Message(role="tool", tool_call_id=c.id, name=c.name, content=text))
                if failed is not None:
                    raise failed
                state.tool_turns += 1
                if state.tool_turns >= self.max_turns:
                    raise AgentError(f"agent {self.name!r} called tools {state.tool_turns} times without answering "
                                     f"(max_turns={self.max_turns})")
                continue
            attempts += 1
            if self._adapter is None:
                state.messages.append(msg)
                return AgentResult(msg.content or "", state.messages, state.usage, None, calls, attempts,
                                   state.model_seconds)
            try:
                value = self.parse_output(msg.content or "")
            except ValueError as err:
                state.messages.append(msg.model_copy(update={"trainable": False}))
                if attempts > self.max_retries:
                    error = OutputValidationError(self.name, attempts, str(err), msg.content or "")
                    if self.escalate_invalid:
                        raise Escalate(f"invalid output: {err}", {"agent": self.name, "output": msg.content,
                                                                  "error": str(err)}) from error
                    raise error from None
                state.messages.append(Message(role="user", content=(
                    f"That answer is not valid: {err}. Reply with only the corrected JSON object.")))
                continue
            state.messages.append(msg)
            if self.review_if is not None:
                reason = self.review_if(value)
                if reason:
                    raise Escalate(reason, {"agent": self.name, "output": to_jsonable(value)})
            return AgentResult(value, state.messages, state.usage, None, calls, attempts, state.model_seconds)
        raise AgentError(f"agent {self.name!r} made {self.max_turns + self.max_retries} model calls without a "
                         "final answer")

    # -- the guard -------------------------------------------------------------------------------

    def active_guard(self, ctx: RunContext) -> Guard | None:
        """This agent's guard, or the one of the workflow or graph it runs in."""
        return self.guard if self.guard is not None else ctx.extra.get("guard")

    def _check(self, ctx: RunContext, text: str, where: str) -> GuardResult | None:
        """``text`` checked by the guard (``None`` without one); each intervention is audited and traced."""
        guard = self.active_guard(ctx)
        if guard is None or not text:
            return None
        with ctx.runtime.tracer.start_as_current_span(f"guard {where}", attributes={
                sc.AGENT_NAME: self.name, sc.CONVERSATION_ID: ctx.session, "agentladder.guard.policy": guard.name,
                "agentladder.guard.where": where}) as span:
            result = guard.check(text, where, conversation_id=ctx.session)
            span.set_attribute("agentladder.guard.findings", len(result.findings))
            span.set_attribute("agentladder.guard.blocked", result.blocked)
            if result.rule:
                span.set_attribute("agentladder.guard.rule", result.rule)
        if result.intervened:
            ctx.runtime.store.audit("guard", session=ctx.session, run_id=ctx.run_id, step=ctx.step,
                                    data={"agent": self.name, **result.audit_data()})
        return result

    def _check_answer(self, ctx: RunContext, state: _RunState, msg: Message) -> Message:
        """The model's answer with its text and its tool calls' arguments checked as ``output``."""
        guard = self.active_guard(ctx)
        if guard is None or not guard.applies("output"):
            return msg
        update: dict[str, Any] = {}
        checked = self._check(ctx, msg.content or "", "output")
        if checked is not None:
            update["content"] = checked.text
        blocked = checked if checked is not None and checked.blocked else None
        if msg.tool_calls:
            calls = []
            for call in msg.tool_calls:
                try:
                    arguments, results = guard.check_value(call.arguments, "output", conversation_id=ctx.session)
                except GuardBlocked as err:
                    arguments, results, blocked = {}, [err.result], blocked or err.result
                for r in results:
                    ctx.runtime.store.audit("guard", session=ctx.session, run_id=ctx.run_id, step=ctx.step,
                                            data={"agent": self.name, "tool": call.name, **r.audit_data()})
                calls.append(call.model_copy(update={"arguments": arguments}))
            update["tool_calls"] = calls
        msg = msg.model_copy(update=update)
        if blocked is not None:
            state.messages.append(msg.model_copy(update={"trainable": False}))
            raise GuardBlocked(blocked)
        return msg

    def parse_output(self, text: str) -> Any:
        """The output type read from an answer's JSON object; ``ValueError`` saying why it does not fit."""
        assert self._adapter is not None
        obj = extract_json_object(text)
        if obj is None:
            raise ValueError("no JSON object in the answer")
        try:
            return self._adapter.validate_python(obj)
        except ValidationError as err:
            raise ValueError(format_validation_error(err)) from None

    async def _call_model(self, state: _RunState, specs: list[dict], ctx: RunContext) -> ChatResponse:
        p = self.provider
        attrs = {sc.OPERATION: "chat", sc.PROVIDER: p.provider_name, sc.REQUEST_MODEL: p.name,
                 sc.MAX_TOKENS: self.max_new_tokens, sc.TEMPERATURE: self.temperature,
                 sc.CONVERSATION_ID: ctx.session, sc.AGENT_NAME: self.name}
        with ctx.runtime.tracer.start_as_current_span(f"chat {p.name}", attributes=attrs, record_exception=False,
                                                      set_status_on_exception=False) as span:
            start = time.perf_counter()
            try:
                response = await p.achat(state.messages, tools=specs, max_new_tokens=self.max_new_tokens,
                                         temperature=self.temperature,
                                         json_output=self._adapter is not None and not specs)
            except Exception as err:
                sc.record_error(span, err)
                raise
            state.model_seconds += time.perf_counter() - start
            span.set_attribute(sc.RESPONSE_MODEL, response.model or p.name)
            span.set_attribute(sc.INPUT_TOKENS, response.usage.input_tokens)
            span.set_attribute(sc.OUTPUT_TOKENS, response.usage.output_tokens)
            span.set_attribute(sc.FINISH_REASONS, (response.finish_reason,))
        state.usage = state.usage + response.usage
        if ctx.run_id:
            ctx.runtime.store.audit("model_call", session=ctx.session, run_id=ctx.run_id, step=ctx.step,
                                    data={"agent": self.name, "model": response.model or p.name,
                                          "input_tokens": response.usage.input_tokens,
                                          "output_tokens": response.usage.output_tokens,
                                          "tool_calls": [c.name for c in response.message.tool_calls or []]})
        return response

    async def _call_tool(self, call: ToolCall, by_name: dict[str, Tool], ctx: RunContext) -> ToolResult:
        t = by_name.get(call.name)
        attrs = {sc.OPERATION: "execute_tool", sc.TOOL_NAME: call.name,
                 sc.TOOL_TYPE: t.tool_type if t is not None else "function",
                 sc.CONVERSATION_ID: ctx.session, sc.AGENT_NAME: self.name, **(t.span_attributes if t else {})}
        if call.id:
            attrs[sc.TOOL_CALL_ID] = call.id
        with ctx.runtime.tracer.start_as_current_span(f"execute_tool {call.name}", attributes=attrs,
                                                      record_exception=False, set_status_on_exception=False) as span:
            if t is None:
                known = ", ".join(by_name) or "none"
                result = ToolResult(None, f"error: no tool named {call.name!r} (tools: {known})",
                                    f"no tool {call.name!r}", "UnknownTool")
            else:
                result = await t.call(call.arguments)
            checked = self._check(ctx, result.text, "tool_result")
            if checked is not None:
                error = None if result.error is None else checked.text.removeprefix("error: ")
                result = ToolResult(result.value, checked.text, error, result.error_type)
            if result.error is not None:
                span.set_status(sc.Status(sc.StatusCode.ERROR, result.error[:500]))
                span.set_attribute(sc.ERROR_TYPE, result.error_type or "ToolError")
        if ctx.run_id:
            ctx.runtime.store.audit("tool_call", session=ctx.session, run_id=ctx.run_id, step=ctx.step,
                                    data={"agent": self.name, "tool": call.name, "arguments": call.arguments,
                                          "error": result.error})
        if checked is not None and checked.blocked:
            raise GuardBlocked(checked)
        return result

    def _record(self, ctx: RunContext, state: _RunState, trajectory_id: str, status: str, output: Any = None) -> str:
        meta = {"agent": self.name, "model": self.provider.name, "session": ctx.session, "status": status,
                "usage": {"input_tokens": state.usage.input_tokens, "output_tokens": state.usage.output_tokens}}
        if ctx.run_id:
            meta.update(run_id=ctx.run_id, step=ctx.step)
        if output is not None:
            meta["output"] = to_jsonable(output)
        meta.update(ctx.extra.get("trajectory_metadata", {}))
        conv = Conversation(id=trajectory_id, messages=state.messages, metadata=meta)
        return ctx.runtime.store.trajectory_add(conv, session=ctx.session, run_id=ctx.run_id, step=ctx.step,
                                                agent=self.name, model=self.provider.name, status=status)

    # -- composition -----------------------------------------------------------------------------

    def as_tool(self, name: str | None = None, description: str | None = None) -> Tool:
        """This agent as a tool of another: the caller writes a request, gets this agent's output back."""
        agent = self

        async def ask(request: str) -> Any:
            """Args:
                request: what to ask, in words (or the text to work on).
            """
            return (await agent.arun(request)).output

        desc = description or self.description or f"Ask the {self.name} agent."
        return Tool(ask, name=name or self.name, description=desc)

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, model={self.provider.name!r}, tools={[t.name for t in self.tools]})"


@dataclass
class _RunState:
    messages: list[Message]
    usage: Usage = field(default_factory=Usage)
    model_seconds: float = 0.0
    tool_turns: int = 0

    def __post_init__(self) -> None:
        self.user = self.messages[-1]


def input_text(value: Any) -> str:
    """How a value is shown to a model: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return to_json(value)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return json.loads(to_json(value))
