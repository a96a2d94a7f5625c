"""MCP both ways, through the official SDK: its servers used as our tools, our tools served to its client.

Real servers only: the official SDK's ``MCPServer`` (examples/pharmacy/formulary_server.py) as a stdio
subprocess and as streamable HTTP on loopback; agentladder's server as a subprocess
(``agentladder tools serve --stdio``) and over HTTP on loopback, driven by the SDK's own ``Client``.
"""

import asyncio
import os
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentladder.agents import (
    Agent,
    LoopbackServer,
    MCPConnection,
    Runtime,
    ScriptedChat,
    export_traces,
    mcp_http_app,
    mcp_tools,
)
from agentladder.data.io import read_jsonl
from agentladder.data.schema import Conversation, RLPrompt, ToolCall

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ROOT / "tests" / "agents" / "servers"
PHARMACY = ROOT / "examples" / "pharmacy"

FORMULARY = "python -m formulary_server"
CASES = [
    ("check_formulary", {"drug": "ibuprofen", "strength_mg": 800}),
    ("check_formulary", {"drug": "Ibuprofen ", "strength_mg": 900}),
    ("check_formulary", {"drug": "unobtainium", "strength_mg": 5}),
    ("check_dose", {"drug": "acetaminophen", "strength_mg": 500, "dose_units": 2, "doses_per_day": 6}),
    ("check_dose", {"drug": "unknown", "strength_mg": 1, "dose_units": 1, "doses_per_day": 1}),
    ("check_interactions", {"drug": "tramadol", "current_medications": ["Sertraline", "lisinopril"]}),
    ("check_interactions", {"drug": "tramadol", "current_medications": []}),
]


def _results(tools, cases=CASES):
    by_name = {t.name: t for t in tools}

    async def run():
        return [await by_name[name].call(args) for name, args in cases]

    return asyncio.run(run())


@pytest.fixture(scope="module")
def stdio_formulary():
    with MCPConnection(FORMULARY, cwd=PHARMACY) as conn:
        yield conn


@pytest.fixture(scope="module")
def http_formulary(pharmacy_tools):
    sys.path.insert(0, str(PHARMACY))
    import formulary_server

    with LoopbackServer(formulary_server.server.streamable_http_app()) as server:
        yield server.url + "/mcp"


def test_sdk_server_over_stdio_gives_the_in_process_results(stdio_formulary, pharmacy_tools):
    tools = stdio_formulary.tools()
    assert [t.name for t in tools] == ["check_formulary", "check_dose", "check_interactions"]
    assert all(t.description and t.tool_type == "extension" for t in tools)
    schema = tools[2].parameters
    assert schema["required"] == ["drug", "current_medications"]
    assert schema["properties"]["current_medications"]["type"] == "array"
    local = [pharmacy_tools.check_formulary, pharmacy_tools.check_dose, pharmacy_tools.check_interactions]
    remote, here = _results(tools), _results(local)
    assert [r.text for r in remote] == [r.text for r in here]
    assert all(r.error is None for r in remote)
    assert '"severity": "major"' in remote[5].text and remote[6].text == "[]"


def test_sdk_server_over_streamable_http(http_formulary, pharmacy_tools):
    tools = mcp_tools(http_formulary, headers={"X-Request-Source": "tests"})
    local = [pharmacy_tools.check_formulary, pharmacy_tools.check_dose, pharmacy_tools.check_interactions]
    assert [r.text for r in _results(tools)] == [r.text for r in _results(local)]


def test_bad_arguments_are_refused_before_the_call(stdio_formulary):
    (dose,) = stdio_formulary.tools(include=["check_dose"])
    result = asyncio.run(dose.call({"drug": "ibuprofen", "strength_mg": "a lot", "dose_units": 1}))
    assert result.error_type == "ToolArgumentError"
    assert "doses_per_day" in result.text and "strength_mg: 'a lot' is not of type 'number'" in result.text


def _reviewer_script():
    return ScriptedChat([
        ToolCall(name="check_dose", arguments={"drug": "ibuprofen", "strength_mg": 800, "dose_units": 2,
                                               "doses_per_day": 3}),
        ToolCall(name="check_interactions", arguments={"drug": "ibuprofen", "current_medications": ["warfarin"]}),
        '{"decision": "flag", "reasons": ["dose", "interaction"]}',
    ], name="script")


def _review(tools, db):
    sys.path.insert(0, str(PHARMACY))
    import pharmacy

    runtime = Runtime(db)
    result = pharmacy.make_reviewer(_reviewer_script(), tools=tools).run("Ibuprofen 800 mg, 2 tablets tid",
                                                                        runtime=runtime)
    runtime.store.annotate(result.trajectory_id, rewards={"score": 1.0}, metadata={"target": "flag"})
    return result, runtime


def _exported(runtime, tmp_path, name):
    out = {}
    for fmt, row_type in (("sft", Conversation), ("rl", RLPrompt)):
        path = tmp_path / f"{name}-{fmt}.jsonl"
        export_traces(runtime.store, fmt, path)
        out[fmt] = [r.model_dump(exclude={"id", "metadata"}) for r in read_jsonl(path, row_type)]
    return out


def test_mcp_calls_make_the_same_trajectories_and_training_rows(stdio_formulary, http_formulary, tmp_path):
    local, local_rt = _review(None, ":memory:")
    over_stdio, stdio_rt = _review(stdio_formulary.tools(), ":memory:")
    over_http, http_rt = _review(mcp_tools(http_formulary), ":memory:")
    assert local.output.decision == "flag"
    assert [m.content for m in local.messages if m.role == "tool"][0].startswith('{"daily_mg": 4800.0')
    for other in (over_stdio, over_http):
        assert other.messages == local.messages and other.output == local.output
    rows = _exported(local_rt, tmp_path, "local")
    assert rows["sft"] and rows["rl"]
    assert _exported(stdio_rt, tmp_path, "stdio") == rows == _exported(http_rt, tmp_path, "http")


def test_sync_and_async_callers_share_one_session(stdio_formulary):
    tools = stdio_formulary.tools()
    agent = Agent(ScriptedChat([ToolCall(name="check_formulary", arguments={"drug": "ibuprofen",
                                                                             "strength_mg": 800}), "ok"] * 4),
                  tools=tools)
    runtime = Runtime(":memory:")
    first = agent.run("a", runtime=runtime)              # its own event loop
    second = agent.run("b", runtime=runtime)             # another loop, the same session

    async def inside_a_loop():
        return await agent.arun("c", runtime=runtime), agent.run("d", runtime=runtime)  # run() in a running loop

    third, _ = asyncio.run(inside_a_loop())
    texts = {r.messages[-2].content for r in (first, second, third)}
    assert len(texts) == 1 and '"listed_strength": true' in texts.pop()


def _children():
    """Live child processes of this process (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == os.getpid() and stat[0] != "Z":
                found.add(int(entry))
    return found


def test_a_connection_closes_its_subprocess():
    before = _children()
    conn = MCPConnection(FORMULARY, cwd=PHARMACY).open()
    thread = conn._thread
    assert thread.is_alive() and conn.listing and len(_children() - before) == 1
    conn.close()
    assert not thread.is_alive() and _children() - before == set()
    with pytest.raises(Exception, match="closed"):
        conn.open()


@pytest.fixture
def served(pharmacy_tools):
    spans = InMemorySpanExporter()
    runtime = Runtime(":memory:", span_exporters=[spans])
    sys.path.insert(0, str(SERVERS))
    import served_tools

    tools = [pharmacy_tools.check_dose, pharmacy_tools.check_interactions, served_tools.total,
             served_tools.evens, served_tools.explode, served_tools.helper]
    with LoopbackServer(mcp_http_app(tools, runtime=runtime)) as server:
        yield server.url + "/mcp", runtime, spans


def test_the_official_client_uses_our_http_server(served):
    url, _, spans = served

    async def session():
        async with Client(url) as client:
            listed = (await client.list_tools()).tools
            by_name = {t.name: t for t in listed}
            total = await client.call_tool("total", {"terms": [1, 2, 3]})
            evens = await client.call_tool("evens", {"upto": 7})
            boom = await client.call_tool("explode", {"why": "no reason"})
            bad = await client.call_tool("total", {"terms": "1,2"})
            helper = await client.call_tool("helper", {"request": "what time is it?"})
            return by_name, total, evens, boom, bad, helper

    by_name, total, evens, boom, bad, helper = asyncio.run(session())
    assert by_name["total"].description == "Add the terms up."
    assert by_name["total"].input_schema["properties"]["terms"] == {
        "description": "the integers to add", "items": {"type": "integer"}, "type": "array"}
    assert by_name["total"].output_schema["properties"]["total"]["type"] == "integer"
    assert by_name["evens"].output_schema["title"] == "evensOutput"       # a list: wrapped, the SDK's convention
    assert total.structured_content == {"total": 6, "terms": [1, 2, 3]} and not total.is_error
    assert evens.structured_content == {"result": [0, 2, 4, 6]} and evens.content[0].text == "[0, 2, 4, 6]"
    assert boom.is_error and boom.content[0].text == "ValueError: no reason"
    assert bad.is_error and bad.content[0].text.startswith("invalid arguments for total: terms")
    assert helper.content[0].text == "You asked: what time is it?"
    served_spans = [s.name for s in spans.get_finished_spans()]
    assert "invoke_agent helper" in served_spans and served_spans.count("execute_tool total") == 2


def test_one_trace_across_client_and_server(served):
    url, server_rt, server_spans = served
    client_spans = InMemorySpanExporter()
    client_rt = Runtime(":memory:", span_exporters=[client_spans])
    model = ScriptedChat([ToolCall(name="total", arguments={"terms": [2, 2]}),
                          ToolCall(name="helper", arguments={"request": "hello"}), "done"])
    result = Agent(model, tools=mcp_tools(url), name="caller").run("go", runtime=client_rt)
    assert [m.content for m in result.messages if m.role == "tool"] == ['{"total": 4, "terms": [2, 2]}',
                                                                         "You asked: hello"]
    mine, theirs = client_spans.get_finished_spans(), server_spans.get_finished_spans()
    assert len({s.context.trace_id for s in mine + theirs}) == 1
    caller_tool_spans = {s.context.span_id: s for s in mine if s.name.startswith("execute_tool")}
    served = [s for s in theirs if s.name.startswith("execute_tool")]
    assert len(served) == 2 and all(s.parent.span_id in caller_tool_spans for s in served)
    for s in served:
        assert s.attributes["gen_ai.operation.name"] == "execute_tool"
        assert s.attributes["gen_ai.tool.name"] == caller_tool_spans[s.parent.span_id].attributes["gen_ai.tool.name"]
    assert caller_tool_spans[served[0].parent.span_id].attributes["gen_ai.tool.type"] == "extension"
    for s in list(caller_tool_spans.values()) + served:
        assert s.attributes["mcp.method.name"] == "tools/call"
    assert {s.attributes["network.transport"] for s in caller_tool_spans.values()} == {"tcp"}
    agent_span = next(s for s in theirs if s.name == "invoke_agent helper")
    assert agent_span.parent.span_id in {s.context.span_id for s in served}   # the served agent runs in the call


def test_the_official_client_with_a_traceparent_in_meta(served):
    url, _, spans = served
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    meta = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}

    async def call():
        async with Client(url) as client:
            return await client.call_tool("evens", {"upto": 3}, meta=meta)

    assert asyncio.run(call()).structured_content == {"result": [0, 2]}
    (span,) = [s for s in spans.get_finished_spans() if s.name == "execute_tool evens"]
    assert format(span.context.trace_id, "032x") == trace_id and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


def test_our_server_as_a_subprocess_for_the_official_client_and_ours(tmp_path):
    argv = ["-m", "agentladder", "tools", "serve", str(SERVERS / "served_tools.py"), "--stdio",
            "--db", str(tmp_path / "served.db")]
    params = StdioServerParameters(command=sys.executable, args=argv, env={"PYTHONPATH": str(ROOT)})

    async def official():
        async with Client(params, read_timeout_seconds=120) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            result = await client.call_tool("total", {"terms": [5, 6]})
            return names, result

    names, result = asyncio.run(official())
    assert names == ["total", "evens", "explode", "helper"]
    assert result.structured_content == {"total": 11, "terms": [5, 6]}
    command = f"python {' '.join(argv)}"
    with MCPConnection(command, env={"PYTHONPATH": str(ROOT)}, connect_timeout=120) as conn:
        (evens,) = conn.tools(include=["evens"])
        assert evens(upto=5) == [0, 2, 4]
