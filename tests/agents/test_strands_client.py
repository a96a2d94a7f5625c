"""A Strands agent, another framework's MCP client, uses agentladder's MCP server over streamable HTTP.

Strands' own agent loop, its ``MCPClient`` and the official SDK underneath talk to the
server; only the Strands agent's model is scripted (a Strands ``Model`` that asks for
the tool calls given to it, then answers with the last tool result it was shown), as no
test here reaches a real model.
"""

import json
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from strands import Agent as StrandsAgent
from strands.models.model import Model
from strands.tools.mcp import MCPClient

from agentladder.agents import LoopbackServer, Runtime, mcp_http_app

SERVERS = Path(__file__).resolve().parent / "servers"


class ScriptedStrandsModel(Model):
    """A Strands model that calls the scripted tools in order, then answers with the last tool result's text."""

    def __init__(self, calls: list[tuple[str, dict]]):
        self.calls = list(calls)
        self.tool_specs: list = []
        self.results: list[dict] = []

    def update_config(self, **model_config):
        pass

    def get_config(self):
        return {}

    async def structured_output(self, output_model, prompt, system_prompt=None, **kwargs):
        raise NotImplementedError("not used by this test")
        yield  # an async generator, as the interface wants

    async def stream(self, messages, tool_specs=None, system_prompt=None, **kwargs):
        self.tool_specs = tool_specs or []
        last = messages[-1]["content"]
        self.results += [block["toolResult"] for block in last if "toolResult" in block]
        yield {"messageStart": {"role": "assistant"}}
        if self.calls:
            name, arguments = self.calls.pop(0)
            yield {"contentBlockStart": {"start": {"toolUse": {"name": name, "toolUseId": f"call-{name}"}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(arguments)}}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
            return
        answer = self.results[-1]["content"][0]["text"] if self.results else "nothing to say"
        yield {"contentBlockStart": {"start": {}}}
        yield {"contentBlockDelta": {"delta": {"text": answer}}}
        yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": "end_turn"}}


@pytest.fixture
def served(pharmacy_tools):
    spans = InMemorySpanExporter()
    runtime = Runtime(":memory:", span_exporters=[spans])
    sys.path.insert(0, str(SERVERS))
    import served_tools

    tools = [pharmacy_tools.check_dose, served_tools.total, served_tools.explode, served_tools.helper]
    with LoopbackServer(mcp_http_app(tools, runtime=runtime)) as server:
        yield server.url + "/mcp", spans
    runtime.shutdown()


def test_a_strands_agent_calls_our_tools_and_our_agent(served, pharmacy_tools):
    url, server_spans = served
    dose_args = {"drug": "ibuprofen", "strength_mg": 800, "dose_units": 2, "doses_per_day": 3}
    model = ScriptedStrandsModel([("check_dose", dose_args), ("total", {"terms": [1, 2, 3]}),
                                  ("explode", {"why": "no reason"}), ("helper", {"request": "hello?"})])
    mcp = MCPClient(url=url)
    with mcp:
        agent = StrandsAgent(model=model, tools=mcp.list_tools_sync(), callback_handler=None)
        answer = agent("Check this order, then add 1, 2 and 3.")
    specs = {s["name"]: s for s in model.tool_specs}
    assert set(specs) == {"check_dose", "total", "explode", "helper"}
    assert specs["total"]["inputSchema"]["json"]["properties"]["terms"]["items"] == {"type": "integer"}
    assert specs["check_dose"]["description"].startswith("Compute the most a direction allows")
    dose, total, boom, helper = model.results
    local_text = pharmacy_tools.check_dose.render(pharmacy_tools.check_dose(**dose_args))
    assert dose["status"] == "success" and dose["content"][0]["text"] == local_text   # as the runtime shows it
    assert total["status"] == "success" and total["content"][0]["text"] == '{"total": 6, "terms": [1, 2, 3]}'
    assert boom["status"] == "error" and "ValueError: no reason" in boom["content"][0]["text"]
    assert helper["status"] == "success" and helper["content"][0]["text"] == "You asked: hello?"
    assert str(answer).strip() == "You asked: hello?"
    served_spans = [s.name for s in server_spans.get_finished_spans()]
    assert served_spans.count("execute_tool total") == 1 and "invoke_agent helper" in served_spans


def test_the_strands_client_trace_context_joins_our_servers_trace(served):
    """Strands puts the caller's W3C traceparent in the request's _meta; our server's span is its child."""
    url, server_spans = served
    client_spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(client_spans))
    model = ScriptedStrandsModel([("total", {"terms": [4, 5]})])
    with MCPClient(url=url) as mcp:
        agent = StrandsAgent(model=model, tools=mcp.list_tools_sync(), callback_handler=None)
        with provider.get_tracer("caller").start_as_current_span("caller turn") as caller:
            agent("add 4 and 5")
    assert model.results[0]["content"][0]["text"] == '{"total": 9, "terms": [4, 5]}'
    (span,) = [s for s in server_spans.get_finished_spans() if s.name == "execute_tool total"]
    assert span.context.trace_id == caller.get_span_context().trace_id
    assert span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert span.attributes["gen_ai.tool.name"] == "total"
