"""The multi-agent runtime: agents, tools, workflows, graphs, supervisors, sessions, review, tracing.

Agents see models only through the provider protocol of
:mod:`agentladder.models.providers` (a local model or LoRA specialist, an
OpenAI-compatible server, a script); ``ChatProvider``, ``OpenAIChat`` and
``ScriptedChat`` are the agents' names for ``Provider``, ``OpenAIProvider`` and
``ScriptedProvider``, and ``LocalChat`` is a local model from the shared pool. Every run is traced
(OpenTelemetry GenAI spans), audited, and stored as a trajectory in the
project's conversation schema, which ``agentladder traces export`` turns into
SFT rows, preference pairs or RL prompts. See ``docs/agents.md``.

Tools also come from elsewhere and go elsewhere (``docs/tools.md``): MCP servers
(``mcp_tools``, through the official SDK) and this project's tools served over MCP
(``mcp_server``, ``serve_mcp``); signed stateless tool endpoints (``signed_tools``,
``signed_app``); long-running calls as jobs (``JobQueue``) that a run can pause on. A ``Guard``
(:mod:`agentladder.agents.guard`) masks personal data and refuses denied topics and prompt
injection in inputs, answers and tool results before anything is recorded (``docs/guardrails.md``).
"""

from agentladder.agents.agent import Agent, AgentError, AgentResult, OutputValidationError
from agentladder.agents.export import export_traces, parse_where
from agentladder.agents.faults import (
    JobFailed,
    ToolConnectionError,
    ToolError,
    ToolFailed,
    ToolResultError,
    ToolSchemaError,
    ToolTimeout,
)
from agentladder.agents.graph import END, Graph, GraphLimitError
from agentladder.agents.guard import Guard, GuardBlocked, GuardResult
from agentladder.agents.index import Hit, VectorIndex, retriever_tool
from agentladder.agents.jobqueue import JobQueue, JobTool
from agentladder.agents.jobs import AwaitJob, JobError, JobHandle, JobState
from agentladder.agents.loopback import LoopbackServer
from agentladder.agents.mcp import MCPConnection, mcp_http_app, mcp_server, mcp_tools, serve_mcp
from agentladder.agents.memory import Memory
from agentladder.agents.pgindex import PgVectorIndex
from agentladder.agents.remote import RemoteTool
from agentladder.agents.resume import aresume_when_done, resume_when_done
from agentladder.agents.review import Escalate, Review, ReviewError, ReviewQueue
from agentladder.agents.runtime import Runtime, Session, default_runtime, set_default_runtime
from agentladder.agents.signed import signed_app, signed_tools
from agentladder.agents.signing import KeyRing
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
    "Hit",
    "Memory",
    "PgVectorIndex",
    "VectorIndex",
    "retriever_tool",
    "Agent",
    "AgentError",
    "AgentResult",
    "AwaitJob",
    "ChatProvider",
    "ChatResponse",
    "END",
    "Escalate",
    "Graph",
    "GraphLimitError",
    "JobError",
    "JobFailed",
    "JobHandle",
    "JobQueue",
    "JobState",
    "JobTool",
    "KeyRing",
    "Guard",
    "GuardBlocked",
    "GuardResult",
    "LocalChat",
    "LoopbackServer",
    "MCPConnection",
    "ModelPool",
    "OpenAIChat",
    "OutputValidationError",
    "RemoteTool",
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
    "ToolConnectionError",
    "ToolError",
    "ToolFailed",
    "ToolResultError",
    "ToolSchemaError",
    "ToolTimeout",
    "Usage",
    "Workflow",
    "aresume_when_done",
    "chat_provider",
    "default_runtime",
    "export_traces",
    "mcp_http_app",
    "mcp_server",
    "mcp_tools",
    "openai_compatible",
    "parse_where",
    "resume_when_done",
    "serve_mcp",
    "set_default_runtime",
    "signed_app",
    "signed_tools",
    "tool",
]
