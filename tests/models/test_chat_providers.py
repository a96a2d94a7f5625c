"""Providers answering agents: tool calls (native, JSON fallback, chat-template blocks), specialists of one
base sharing it, usage and traces."""

import http.server
import json
import threading

import pytest
import torch
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentladder.agents import (
    Agent,
    LocalChat,
    ModelPool,
    OpenAIChat,
    Runtime,
    ScriptedChat,
    openai_compatible,
    tool,
)
from agentladder.data.schema import Message
from agentladder.models.providers import ScriptedProvider
from agentladder.models.providers.toolcalls import fallback_instructions, parse_tool_calls


@pytest.fixture
def rt():
    runtime = Runtime(":memory:", span_exporters=[InMemorySpanExporter()])
    yield runtime
    runtime.shutdown()


@tool
def check_dose(drug: str, daily_mg: float) -> dict:
    """Check a daily dose."""
    return {"drug": drug, "over_limit": daily_mg > 4000}


class _Server:
    """A local OpenAI-compatible endpoint answering from a list, recording each request body."""

    def __init__(self, replies):
        self.replies, self.bodies = list(replies), []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                data = json.dumps(outer.replies.pop(0)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def _choice(message, finish="stop"):
    return {"model": "served-model", "choices": [{"message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7}}


def test_openai_compatible_native_tool_calls(rt):
    server = _Server([
        _choice({"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "check_dose",
                                                          "arguments": '{"drug": "ibuprofen", "daily_mg": 4800}'}}]},
                "tool_calls"),
        _choice({"role": "assistant", "content": "Over the limit."}),
    ])
    try:
        agent = Agent(openai_compatible(server.url, "some-model"), system="Check.", tools=[check_dose])
        result = agent.run("ibuprofen 800 mg 6 times a day", runtime=rt)
    finally:
        server.close()
    assert result.output == "Over the limit."
    first, second = server.bodies
    assert first["model"] == "some-model" and first["tools"][0]["function"]["name"] == "check_dose"
    assert second["messages"][-2]["tool_calls"][0]["id"] == "c1"
    assert second["messages"][-1] == {"role": "tool", "content": '{"drug": "ibuprofen", "over_limit": true}',
                                      "tool_call_id": "c1", "name": "check_dose"}
    assert result.usage.input_tokens == 22 and result.usage.output_tokens == 14


def test_openai_compatible_json_fallback(rt):
    server = _Server([
        _choice({"role": "assistant", "content": '{"tool": "check_dose", "arguments": {"drug": "x", "daily_mg": 1}}'}),
        _choice({"role": "assistant", "content": "Fine."}),
    ])
    try:
        provider = OpenAIChat("small", base_url=server.url, tool_mode="json")
        result = Agent(provider, tools=[check_dose]).run("x", runtime=rt)
    finally:
        server.close()
    assert result.output == "Fine." and [c.name for c in result.tool_calls] == ["check_dose"]
    first, second = server.bodies
    assert "tools" not in first and "check_dose(drug: string, daily_mg: number)" in first["messages"][0]["content"]
    assert second["messages"][-1]["role"] == "user" and second["messages"][-1]["content"].startswith(
        "Result of check_dose:")


def test_tool_calls_read_from_text():
    names = ["check_dose"]
    assert parse_tool_calls('Sure. {"drug": "x", "strength_mg": 5}', names)[1] == []  # an answer, not a call
    content, calls = parse_tool_calls('<tool_call>\n{"name": "check_dose", "arguments": {"drug": "a"}}\n</tool_call>',
                                      names)
    assert content is None and calls[0].name == "check_dose" and calls[0].arguments == {"drug": "a"}
    _, calls = parse_tool_calls('{"tool": "check_dose", "arguments": "{\\"drug\\": \\"b\\"}"}', names)
    assert calls[0].arguments == {"drug": "b"}
    assert "- check_dose(drug: string, daily_mg: number): Check a daily dose." in fallback_instructions(
        [check_dose.to_openai()])


def test_text_only_model_gets_the_json_fallback(rt):
    """A model that answers with text only is offered the tools in its system turn; its calls are read from the text."""
    reply = '{"tool": "check_dose", "arguments": {"drug": "x", "daily_mg": 5000}}'
    provider = ScriptedProvider([reply, "It is over."], tool_mode="json")
    result = Agent(provider, tools=[check_dose]).run("x", runtime=rt)
    assert result.output == "It is over." and [c.name for c in result.tool_calls] == ["check_dose"]
    assert "You can call tools" in provider.calls[0][0].content


def _adapter_folder(tmp_path, name, seed):
    from agentladder.models import attach_lora, save_adapter, tiny_model

    model = attach_lora(tiny_model(), None)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    folder = tmp_path / name
    save_adapter(model, folder)
    (folder / "agentladder.json").write_text(json.dumps({"base_model": "tiny"}))
    return folder


def test_lora_specialists_share_one_base(tmp_path, rt):
    a, b = _adapter_folder(tmp_path, "spec-a", 1), _adapter_folder(tmp_path, "spec-b", 2)
    pool = ModelPool()
    chats = {k: LocalChat(k, pool=pool) for k in (str(a), str(b), "tiny")}
    msgs = [Message(role="user", content="hello")]
    out = {k: c.chat(msgs, max_new_tokens=6) for k, c in chats.items()}
    assert pool.base_models() == 1  # two adapters and the plain base: one copy of the weights
    texts = {k: r.message.content for k, r in out.items()}
    assert len(set(texts.values())) == 3  # each call ran its own adapter (or none)
    # switching back and forth gives the same answers: adapters are switched per call, not mixed
    again = {k: chats[k].chat(msgs, max_new_tokens=6).message.content for k in reversed(list(chats))}
    assert again == texts
    # the same as loading each specialist on its own
    from agentladder.models import load_model

    alone, tok = load_model(str(a))
    alone.eval()
    ids = tok(tok.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False,
                                      add_generation_prompt=True), add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        gen = alone.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    assert tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip() == texts[str(a)]
    r = out[str(a)]
    assert r.usage.input_tokens == ids["input_ids"].shape[1] and 0 < r.usage.output_tokens <= 6


def test_local_model_in_an_agent_with_tools(rt):
    pool = ModelPool()
    chat = LocalChat("tiny", pool=pool)
    agent = Agent(chat, system="Check doses.", tools=[check_dose], max_new_tokens=8, max_turns=2)
    result = agent.run("ibuprofen", runtime=rt)  # a random model answers gibberish: no call, plain text
    assert isinstance(result.output, str)
    spans = rt.store.spans()
    chat_span = next(s for s in spans if s["name"] == "chat tiny")
    assert chat_span["attributes"]["gen_ai.provider.name"] == "agentladder.local"
    assert chat_span["attributes"]["gen_ai.usage.input_tokens"] > 100  # the tool instructions went in


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="tool_mode"):
        OpenAIChat("m", tool_mode="xml")
    with pytest.raises(ValueError, match="tool_mode"):
        LocalChat("tiny", tool_mode="xml")
    with pytest.raises(ValueError, match="openai:MODEL"):
        Agent("openai:")
    with pytest.raises(TypeError, match="a model is a provider"):
        Agent(42)
    assert isinstance(Agent(ScriptedChat([])).provider, ScriptedChat)
