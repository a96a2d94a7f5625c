"""Faults become tool errors the model sees and the trace records, never a hung run.

The faulty server is a real MCP server written with the official SDK's low-level ``Server``
(tests/agents/servers/fault_server.py), as a stdio subprocess and over streamable HTTP.
"""

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentladder.agents import Agent, MCPConnection, Runtime, ScriptedChat, mcp_tools, tool
from agentladder.data.schema import ToolCall
from agentladder.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ROOT / "tests" / "agents" / "servers"
PHARMACY = ROOT / "examples" / "pharmacy"

FAULTS = f"python {SERVERS / 'fault_server.py'}"


@pytest.fixture(scope="module")
def faults():
    with MCPConnection(FAULTS, timeout=2.0) as conn:
        yield conn


def _run_agent(tools, call, spans_rt):
    """One agent turn that calls ``call`` then answers: the tool's text, and its execute_tool span."""
    model = ScriptedChat([ToolCall(name=call[0], arguments=call[1]), "ok"])
    start = time.monotonic()
    result = Agent(model, tools=tools, name="prober").run("probe", runtime=spans_rt)
    seconds = time.monotonic() - start
    text = next(m.content for m in result.messages if m.role == "tool")
    assert result.output == "ok"                                   # the run finished: the model saw the error
    return text, seconds


def _tool_span(spans, name):
    return [s for s in spans.get_finished_spans() if s.name == f"execute_tool {name}"][-1]


def test_listing_keeps_every_tool(faults):
    assert [t.name for t in faults.tools()] == ["add", "hang", "die", "bad_schema", "bad_output", "huge", "fail"]
    (add,) = faults.tools(include=["add"])
    assert add(a=2, b=3) == 5                                     # the {"result": ...} wrapper is removed


def test_a_hanging_tool_times_out(faults, rt, spans):
    text, seconds = _run_agent(faults.tools(timeout=1.0), ("hang", {}), rt)
    assert text.startswith("error: ToolTimeout: hang gave no result within") and seconds < 10
    span = _tool_span(spans, "hang")
    assert span.status.status_code.name == "ERROR" and span.attributes["error.type"] == "ToolTimeout"


def test_a_malformed_schema_is_listed_but_refuses_to_run(faults, rt, spans):
    (bad,) = faults.tools(include=["bad_schema"])
    assert bad.parameters == {"type": "object", "properties": {}}      # what the model is shown instead
    text, _ = _run_agent([bad], ("bad_schema", {"x": 1}), rt)
    assert text.startswith("error: ToolSchemaError: bad_schema cannot be called: the input schema is not valid "
                           "JSON Schema (properties/x/type:")
    assert _tool_span(spans, "bad_schema").attributes["error.type"] == "ToolSchemaError"


def test_a_result_that_breaks_its_output_schema(faults, rt, spans):
    text, _ = _run_agent(faults.tools(), ("bad_output", {}), rt)
    assert text.startswith("error: ToolResultError: bad_output:") and "'x' is not of type 'integer'" in text
    assert _tool_span(spans, "bad_output").attributes["error.type"] == "ToolResultError"


def test_an_oversize_result(faults, rt, spans):
    text, _ = _run_agent(faults.tools(max_result_chars=10_000), ("huge", {}), rt)
    assert text == ("error: ToolResultError: the result of huge is 1,000,000 characters, over the limit of 10,000; "
                    "ask for less")
    assert _tool_span(spans, "huge").attributes["error.type"] == "ToolResultError"


def test_a_reported_error_is_shown_in_the_servers_words(faults, rt, spans):
    text, _ = _run_agent(faults.tools(), ("fail", {}), rt)
    assert text == "error: the database is down"
    assert _tool_span(spans, "fail").attributes["error.type"] == "MCPToolError"


def test_a_stdio_server_that_dies_mid_call_then_comes_back(rt, spans):
    with MCPConnection(FAULTS, timeout=20.0) as conn:
        tools = conn.tools()
        text, seconds = _run_agent(tools, ("die", {}), rt)
        assert text.startswith("error: ToolConnectionError: MCP server") and seconds < 15
        assert _tool_span(spans, "die").attributes["error.type"] == "ToolConnectionError"
        again, _ = _run_agent(tools, ("add", {"a": 1, "b": 1}), rt)   # a new session, a new subprocess
        assert again == "2"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port, proc, seconds=60):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert proc.poll() is None, "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def test_an_http_server_that_dies_mid_call(rt):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(SERVERS / "fault_server.py"), "--http", str(port)])
    try:
        _wait_listening(port, proc)
        with MCPConnection(f"http://127.0.0.1:{port}/mcp", timeout=15.0) as conn:
            text, seconds = _run_agent(conn.tools(), ("die", {}), rt)
            assert text.startswith("error: ToolConnectionError: MCP server") and seconds < 20
            assert proc.wait(timeout=10) == 3
            after, _ = _run_agent(conn.tools(), ("add", {"a": 1, "b": 1}), rt)   # nobody listens any more
            assert after.startswith("error: ToolConnectionError: cannot open MCP server")
    finally:
        proc.kill()


def test_a_server_that_cannot_start_is_a_clear_error():
    with pytest.raises(ConfigError, match="cannot open MCP server python -m no_such_module_here"):
        mcp_tools("python -m no_such_module_here", connect_timeout=30)


def test_a_local_tool_that_hangs_times_out(rt, spans):
    @tool(timeout=0.2)
    async def slow(x: int) -> int:
        """Never quick enough."""
        await asyncio.sleep(60)
        return x

    text, seconds = _run_agent([slow], ("slow", {"x": 1}), rt)
    assert text == "error: ToolTimeout: slow gave no result within 0.2 s" and seconds < 5
    assert _tool_span(spans, "slow").attributes["error.type"] == "ToolTimeout"


def test_the_runtime_records_the_error_in_the_trajectory(faults):
    runtime = Runtime(":memory:")
    model = ScriptedChat([ToolCall(name="fail", arguments={}), "sorry"])
    result = Agent(model, tools=faults.tools(), name="prober").run("x", runtime=runtime)
    stored = runtime.store.trajectory(result.trajectory_id)
    assert [m.content for m in stored.messages if m.role == "tool"] == ["error: the database is down"]
