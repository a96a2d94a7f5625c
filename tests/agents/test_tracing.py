import http.server
import threading

import pytest
from pydantic import BaseModel

from agentladder.agents import Agent, Runtime, ScriptedChat, Workflow, tool
from agentladder.data.schema import ToolCall


class Out(BaseModel):
    value: int


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _run(rt):
    model = ScriptedChat([ToolCall(name="add", arguments={"a": 1, "b": "x"}),
                          ToolCall(name="add", arguments={"a": 1, "b": 2}), '{"value": 3}'], name="scripted-model")
    agent = Agent(model, tools=[add], output=Out, name="adder", max_new_tokens=64)
    return Workflow("sum").step("add", agent).run("1+2", session="s-1", runtime=rt)


def test_spans_follow_the_genai_conventions(rt, spans):
    result = _run(rt)
    finished = {s.name: s for s in spans.get_finished_spans()}
    names = [s.name for s in spans.get_finished_spans()]
    assert names.count("chat scripted-model") == 3 and names.count("execute_tool add") == 2
    assert {"invoke_workflow sum", "step add", "invoke_agent adder"} <= set(names)

    chat = next(s for s in spans.get_finished_spans() if s.name == "chat scripted-model")
    a = chat.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "scripted"
    assert a["gen_ai.request.model"] == "scripted-model" and a["gen_ai.response.model"] == "scripted-model"
    assert a["gen_ai.request.max_tokens"] == 64 and a["gen_ai.request.temperature"] == 0.0
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert a["gen_ai.conversation.id"] == "s-1"
    assert chat.end_time > chat.start_time  # latency is the span's duration

    tools = [s for s in spans.get_finished_spans() if s.name == "execute_tool add"]
    bad, good = tools
    assert bad.attributes["gen_ai.operation.name"] == "execute_tool" and bad.attributes["gen_ai.tool.name"] == "add"
    assert bad.attributes["gen_ai.tool.call.id"] and bad.attributes["error.type"] == "ToolArgumentError"
    assert bad.status.status_code.name == "ERROR" and good.status.status_code.name == "UNSET"

    agent_span = finished["invoke_agent adder"]
    assert agent_span.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent_span.attributes["gen_ai.agent.name"] == "adder"
    assert agent_span.attributes["agentladder.trajectory.id"] == result.trajectories["add"]
    assert agent_span.attributes["gen_ai.usage.output_tokens"] == sum(
        s.attributes["gen_ai.usage.output_tokens"] for s in spans.get_finished_spans() if s.name.startswith("chat"))
    wf = finished["invoke_workflow sum"]
    assert wf.attributes["gen_ai.operation.name"] == "invoke_workflow" and wf.attributes["gen_ai.workflow.name"] == "sum"
    # one trace, properly nested: workflow > step > agent > chat / tool
    assert len({s.context.trace_id for s in spans.get_finished_spans()}) == 1
    assert finished["step add"].parent.span_id == wf.context.span_id
    assert agent_span.parent.span_id == finished["step add"].context.span_id
    assert chat.parent.span_id == agent_span.context.span_id


def test_spans_are_stored_locally(rt):
    _run(rt)
    stored = rt.store.spans(session="s-1")
    assert len(stored) == 8
    chat = next(s for s in stored if s["name"].startswith("chat"))
    assert chat["attributes"]["gen_ai.usage.input_tokens"] > 0 and chat["end_ns"] >= chat["start_ns"]
    assert chat["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]


def test_a_failing_model_call_is_an_error_span(rt, spans):
    def down(messages, tools):
        raise ConnectionError("endpoint down")

    with pytest.raises(ConnectionError):
        Agent(ScriptedChat(down), name="a").run("x", runtime=rt)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    assert by_name["chat scripted"].attributes["error.type"] == "ConnectionError"
    assert by_name["invoke_agent a"].status.status_code.name == "ERROR"
    assert rt.store.trajectories()[0]["status"] == "error"


def test_spans_reach_an_otlp_endpoint():
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rt = Runtime(":memory:", otlp_endpoint=f"http://127.0.0.1:{server.server_port}")
        Agent(ScriptedChat(["hi"]), name="greeter").run("hello", runtime=rt)
        rt.shutdown()  # flushes the batch
    finally:
        server.shutdown()
    assert received and received[0][0] == "/v1/traces" and received[0][1] == "application/x-protobuf"
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest.FromString(received[0][2])
    names = {s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    assert names == {"invoke_agent greeter", "chat scripted"}
