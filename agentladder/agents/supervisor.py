"""A supervisor: an LLM that routes a task to specialist agents, called as its tools.

.. code-block:: python

    sup = Supervisor(model, agents=[billing, shipping], system="Route each request to the right team.")
    result = sup.run("Where is my parcel?")
    result.routes            # ["shipping"]: which specialists the supervisor called, in order

The supervisor is an :class:`~agentladder.agents.Agent` whose tools are the
specialists (``agent.as_tool()``) plus any plain tools; the model decides
whom to call, may call several in turn, and writes the final answer (or a
typed ``output``). ``max_rounds`` bounds how many times it may call tools. A ``guard=``
(passed on to its agent) also covers the specialists it calls, unless they have their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentladder.agents.agent import Agent, AgentResult
from agentladder.agents.runtime import Runtime
from agentladder.agents.tools import Tool

DEFAULT_SYSTEM = ("You are a supervisor. Hand each request to the specialist best placed to answer it by calling "
                  "it as a tool, then give the final answer from what it returned.")


@dataclass
class SupervisorResult:
    output: Any
    routes: list[str]
    """The specialists called, in order."""
    result: AgentResult


class Supervisor:
    """Routes to specialist agents with an LLM's decision. See the module docstring."""

    def __init__(self, model: Any, agents: Sequence[Agent], *, system: str = DEFAULT_SYSTEM,
                 tools: Sequence[Tool] = (), output: Any = None, name: str = "supervisor", max_rounds: int = 4,
                 **agent_kwargs: Any):
        if not agents:
            raise ValueError("a supervisor needs at least one agent to route to")
        self.specialists = {a.name: a for a in agents}
        self.agent = Agent(model, system=system, tools=[*[a.as_tool() for a in agents], *tools], output=output,
                           name=name, max_turns=max_rounds, **agent_kwargs)

    def run(self, task: Any, *, session: str | None = None, runtime: Runtime | None = None) -> SupervisorResult:
        return self._wrap(self.agent.run(task, session=session, runtime=runtime))

    async def arun(self, task: Any, *, session: str | None = None,
                   runtime: Runtime | None = None) -> SupervisorResult:
        return self._wrap(await self.agent.arun(task, session=session, runtime=runtime))

    def as_tool(self, name: str | None = None, description: str | None = None) -> Tool:
        return self.agent.as_tool(name, description)

    def _wrap(self, result: AgentResult) -> SupervisorResult:
        routes = [c.name for c in result.tool_calls if c.name in self.specialists]
        return SupervisorResult(result.output, routes, result)
