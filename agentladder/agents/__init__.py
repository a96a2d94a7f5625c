"""The multi-agent runtime: agents, tools, workflows, graphs, supervisors, sessions, review, tracing.

Agents see models only through the provider protocol of
:mod:`agentladder.models.providers` (a local model or LoRA specialist, an
OpenAI-compatible server, a script); ``ChatProvider``, ``OpenAIChat`` and
``ScriptedChat`` are the agents' names for ``Provider``, ``OpenAIProvider`` and
``ScriptedProvider``, and ``LocalChat`` is a local model from the shared pool. Every run is traced
(OpenTelemetry GenAI spans), audited, and stored as a trajectory in the
project's conversation schema, which ``agentladder traces export`` turns into
SFT rows, preference pairs or RL prompts. See ``docs/agents.md``. A ``Guard``
(:mod:`agentladder.agents.guard`) masks personal data and refuses denied topics and prompt
injection in inputs, answers and tool results before anything is recorded (``docs/guardrails.md``).
"""

from agentladder.agents.agent import Agent, AgentError, AgentResult, OutputValidationError
from agentladder.agents.export import export_traces, parse_where
from agentladder.agents.graph import END, Graph, GraphLimitError
from agentladder.agents.guard import Guard, GuardBlocked, GuardResult
from agentladder.agents.review import Escalate, Review, ReviewError, ReviewQueue
from agentladder.agents.runtime import Runtime, Session, default_runtime, set_default_runtime
from agentladder.agents.steps import RunResult, StepContext, StepError
from agentladder.agents.store import Store
from agentladder.agents.supervisor import Supervisor, SupervisorResult
from agentladder.agents.tools import Tool, ToolArgumentError, tool
from agentladder.agents.workflow import Workflow
from agentladder.models.providers import (
    ChatResponse,
    LocalChat,
    ModelPool,
    Usage,
    chat_provider,
    openai_compatible,
)
from agentladder.models.providers import OpenAIProvider as OpenAIChat
from agentladder.models.providers import Provider as ChatProvider
from agentladder.models.providers import ScriptedProvider as ScriptedChat

__all__ = [
    "END",
    "Agent",
    "AgentError",
    "AgentResult",
    "ChatProvider",
    "ChatResponse",
    "Escalate",
    "Graph",
    "GraphLimitError",
    "Guard",
    "GuardBlocked",
    "GuardResult",
    "LocalChat",
    "ModelPool",
    "OpenAIChat",
    "OutputValidationError",
    "Review",
    "ReviewError",
    "ReviewQueue",
    "RunResult",
    "Runtime",
    "ScriptedChat",
    "Session",
    "StepContext",
    "StepError",
    "Store",
    "Supervisor",
    "SupervisorResult",
    "Tool",
    "ToolArgumentError",
    "Usage",
    "Workflow",
    "chat_provider",
    "default_runtime",
    "export_traces",
    "openai_compatible",
    "parse_where",
    "set_default_runtime",
    "tool",
]
