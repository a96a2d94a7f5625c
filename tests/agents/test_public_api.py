"""The agents package's public surface grows only on purpose; `train` never imports `agents`."""

import subprocess
import sys

import agentladder.agents


def test_public_names():
    assert sorted(agentladder.agents.__all__) == sorted([
        "END", "Agent", "AgentError", "AgentResult", "ChatProvider", "ChatResponse", "Escalate", "Graph",
        "GraphLimitError", "Guard", "GuardBlocked", "GuardResult", "LocalChat", "ModelPool", "OpenAIChat", "OutputValidationError", "Review", "ReviewError",
        "ReviewQueue", "RunResult", "Runtime", "ScriptedChat", "Session", "StepContext", "StepError", "Store",
        "Supervisor", "SupervisorResult", "Tool", "ToolArgumentError", "Usage", "Workflow",
        "chat_provider", "default_runtime", "export_traces", "openai_compatible", "parse_where",
        "set_default_runtime", "tool",
        # tools from elsewhere (docs/tools.md): MCP, signed calls, jobs, faults
        "AwaitJob", "JobError", "JobFailed", "JobHandle", "JobQueue", "JobState", "JobTool", "KeyRing",
        "LoopbackServer", "MCPConnection", "RemoteTool", "ToolConnectionError", "ToolError", "ToolFailed",
        "ToolResultError", "ToolSchemaError", "ToolTimeout", "aresume_when_done", "mcp_http_app", "mcp_server",
        "mcp_tools", "resume_when_done", "serve_mcp", "signed_app", "signed_tools",
        # retrieval (docs/retrieval.md): the vector index in the store (and in PostgreSQL) and its tool
        "Hit", "Memory", "PgVectorIndex", "VectorIndex", "retriever_tool",
    ])
    for name in agentladder.agents.__all__:
        assert hasattr(agentladder.agents, name), name


def test_train_does_not_import_agents():
    code = ("import sys, agentladder.train, agentladder.train.sft, agentladder.train.preference; "
            "print(any(m.startswith('agentladder.agents') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
