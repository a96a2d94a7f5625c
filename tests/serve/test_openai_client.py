"""The real ``openai`` client against a real server on loopback (tiny model, two specialists, MiniLM)."""

import json
import threading

import httpx
import jsonschema
import numpy as np
import openai
import pytest

from agentladder.data import Message
from agentladder.models.engine import SamplingParams

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["drug", "as_needed", "doses_per_day", "form"],
          "properties": {"drug": {"type": "string", "maxLength": 12}, "as_needed": {"type": "boolean"},
                         "doses_per_day": {"type": "integer", "minimum": 1, "maximum": 6},
                         "form": {"enum": ["tablet", "capsule", "liquid"]}}}
WEATHER = {"type": "function", "function": {"name": "weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "additionalProperties": False,
                                                           "required": ["city", "days"],
                                                           "properties": {"city": {"enum": ["Paris", "Rome"]},
                                                                          "days": {"type": "integer", "minimum": 1,
                                                                                   "maximum": 3}}}}}


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as c:
        yield c


def _engine_text(server, messages, n_tokens, adapter=None):
    engine = server.state.served.engine
    ids = engine.encode([Message(role=m["role"], content=m["content"]) for m in messages])
    (c,), = engine.generate([ids], SamplingParams(max_new_tokens=n_tokens, temperature=0),
                            adapters=[adapter] if adapter else ([None] if hasattr(engine.model, "peft_config") else None))
    return c


def test_chat_is_the_engines_greedy_answer_whole_and_streamed(server, client):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
    reply = client.chat.completions.create(model="tiny", messages=messages, max_tokens=12, temperature=0)
    ref = _engine_text(server, messages, 12)
    assert reply.choices[0].message.content == ref.text
    assert reply.choices[0].finish_reason == ("length" if ref.finish_reason == "length" else "stop")
    assert reply.usage.completion_tokens == len(ref.token_ids) and reply.usage.prompt_tokens > 10
    stream = client.chat.completions.create(model="tiny", messages=messages, max_tokens=12, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ref.text
    assert chunks[-1].usage.completion_tokens == len(ref.token_ids) and chunks[-1].choices == []


def test_the_request_model_picks_the_specialist(server, client):
    messages = [{"role": "user", "content": "Which adapter answers?"}]
    texts = {}
    for name in ("tiny", "alpha", "beta"):
        reply = client.chat.completions.create(model=name, messages=messages, max_tokens=10, temperature=0)
        texts[name] = reply.choices[0].message.content
        assert reply.model == name
    adapter = {s.name: s.adapter for s in server.state.served.specialists.values()}
    assert texts["alpha"] == _engine_text(server, messages, 10, adapter["alpha"]).text
    assert texts["beta"] == _engine_text(server, messages, 10, adapter["beta"]).text
    assert len(set(texts.values())) == 3


def test_json_schema_answers_always_validate(client):
    reply = client.chat.completions.create(
        model="alpha", messages=[{"role": "user", "content": "amoxicillin 500 mg capsule three times a day"}],
        response_format={"type": "json_schema", "json_schema": {"name": "directions", "schema": SCHEMA}},
        n=4, temperature=1.0, seed=3, max_tokens=200)  # the tiny tokenizer spells JSON byte by byte
    assert len(reply.choices) == 4
    for choice in reply.choices:
        assert choice.finish_reason == "stop"
        jsonschema.validate(json.loads(choice.message.content), SCHEMA)
    obj = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=40,
                                         response_format={"type": "json_object"}, temperature=0)
    if obj.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(obj.choices[0].message.content), dict)


def test_seeded_sampling_repeats_and_logprobs(client):
    kw = dict(model="tiny", messages=[{"role": "user", "content": "sample"}], max_tokens=8, temperature=0.9,
              top_p=0.9, seed=11, n=2, logprobs=True, top_logprobs=3)
    a, b = client.chat.completions.create(**kw), client.chat.completions.create(**kw)
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    entries = a.choices[0].logprobs.content
    assert sum(len(c.logprobs.content) for c in a.choices) == a.usage.completion_tokens
    assert all(e.logprob <= 0 and len(e.top_logprobs) == 3 for e in entries)
    assert all(e.top_logprobs[0].logprob >= e.logprob for e in entries)


def test_required_and_named_tool_choice_give_valid_tool_calls(client):
    messages = [{"role": "user", "content": "Weather in Paris for two days?"}]
    for choice in ("required", {"type": "function", "function": {"name": "weather"}}):
        reply = client.chat.completions.create(model="tiny", messages=messages, tools=[WEATHER], tool_choice=choice,
                                               temperature=0, max_tokens=120)
        (call,) = reply.choices[0].message.tool_calls
        assert reply.choices[0].finish_reason == "tool_calls" and call.function.name == "weather"
        jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    stream = client.chat.completions.create(model="tiny", messages=messages, tools=[WEATHER], tool_choice="required",
                                            temperature=0, max_tokens=120, stream=True)
    calls = [tc for c in stream for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "weather" and json.loads(calls[0].function.arguments)["city"]


def test_text_completions_stop_strings_and_echo(server, client):
    out = client.completions.create(model="tiny", prompt=["one", "two"], max_tokens=6, temperature=0, n=2,
                                    logprobs=2, echo=True)
    assert [c.index for c in out.choices] == [0, 1, 2, 3]
    assert out.choices[0].text.startswith("one") and out.choices[2].text.startswith("two")
    assert out.choices[0].text == out.choices[1].text
    assert len(out.choices[0].logprobs.tokens) == len(out.choices[0].logprobs.token_logprobs)
    full = client.completions.create(model="tiny", prompt="stop test", max_tokens=12, temperature=0).choices[0].text
    windows = [full[i : i + 2] for i in range(1, len(full) - 1)]
    stop = next(w for w in windows if w.isascii() and w.isprintable())  # the tiny model's greedy text is fixed
    cut = client.completions.create(model="tiny", prompt="stop test", max_tokens=12, temperature=0, stop=[stop])
    assert cut.choices[0].text == full[: full.find(stop)] and cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(model="tiny", prompt="stop test", max_tokens=12, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == full


def test_embeddings_float_and_base64(client):
    a = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a cat sat", "a cat was sitting", "tax law"])
    vecs = np.array([d.embedding for d in a.data])
    assert vecs.shape == (3, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    b = client.embeddings.create(model="all-MiniLM-L6-v2", input="a cat sat", encoding_format="float", dimensions=64)
    assert len(b.data[0].embedding) == 64 and a.usage.prompt_tokens > 0
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="tiny", input="generative models do not embed")


def test_models_list_and_adapter_load_unload(server, client, adapters):
    listed = {m.id: m for m in client.models.list().data}
    assert {"tiny", "alpha", "beta", "all-MiniLM-L6-v2"} <= set(listed)
    assert listed["alpha"].parent == "tiny" and listed["tiny"].parent is None
    assert client.models.retrieve("beta").root == adapters["beta"]
    ok = client.post("/load_lora_adapter", body={"lora_name": "gamma", "lora_path": adapters["alpha"]},
                     cast_to=httpx.Response)
    assert ok.status_code == 200 and ok.text == "Success: LoRA adapter 'gamma' added successfully."
    messages = [{"role": "user", "content": "Which adapter answers?"}]
    same = [client.chat.completions.create(model=m, messages=messages, max_tokens=8, temperature=0)
            .choices[0].message.content for m in ("alpha", "gamma")]
    assert same[0] == same[1]
    with pytest.raises(openai.BadRequestError, match="already been loaded"):
        client.post("/load_lora_adapter", body={"lora_name": "gamma", "lora_path": adapters["alpha"]},
                    cast_to=httpx.Response)
    with pytest.raises(openai.NotFoundError):
        client.post("/load_lora_adapter", body={"lora_name": "delta", "lora_path": "/no/such/folder"},
                    cast_to=httpx.Response)
    gone = client.post("/unload_lora_adapter", body={"lora_name": "gamma"}, cast_to=httpx.Response)
    assert gone.text == "Success: LoRA adapter 'gamma' removed successfully."
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gamma", messages=messages, max_tokens=4)
    with pytest.raises(openai.NotFoundError):
        client.post("/unload_lora_adapter", body={"lora_name": "gamma"}, cast_to=httpx.Response)
    assert len(server.state.served.engine.model.peft_config) == 2


def test_errors_have_the_openai_shape_and_status(server, client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert err.value.code == "model_not_found" and err.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x" * 5000}])
    assert err.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x"}], max_tokens=10**9)
    assert err.value.code == "context_length_exceeded" and err.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "wizard", "content": "x"}])
    assert err.value.body["param"] == "messages[0].role"
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="forbidden", messages=[{"role": "user", "content": "x"}])
    raw = httpx.post(server.base_url + "/chat/completions", content=b"{not json", timeout=10)
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"
    assert set(raw.json()["error"]) == {"message", "type", "param", "code"}
    assert httpx.get(server.url + "/health", timeout=10).json()["status"] == "ok"


def test_concurrent_requests_share_decoding_steps(server):
    scheduler = server.state.scheduler
    before = scheduler.steps
    replies = [None] * 8

    def ask(i):
        r = httpx.post(server.base_url + "/completions", timeout=60,
                       json={"model": ["tiny", "alpha", "beta"][i % 3], "prompt": f"prompt number {i}",
                             "max_tokens": 20, "temperature": 0, "ignore_eos": True})
        replies[i] = r.json()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r["usage"]["completion_tokens"] == 20 for r in replies)
    assert scheduler.steps - before < 8 * 20 / 2, "eight 20-token requests decoded in shared steps"


def test_hooks_see_every_call_with_usage(server, client, hooks):
    hooks.finished.clear()
    client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "usage"}], max_tokens=5,
                                   temperature=0)
    list(client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "usage"}], max_tokens=5,
                                        temperature=0, stream=True))
    client.models.list()
    whole, streamed, models = hooks.finished[-3:]
    assert whole["status"] == streamed["status"] == models["status"] == 200
    assert whole["usage"].completion_tokens == streamed["usage"].completion_tokens == 5
    assert streamed["response"]["choices"][0]["message"]["content"] == whole["response"]["choices"][0]["message"]["content"]
    assert whole["admission"] == {"path": "/v1/chat/completions"} and whole["latency"] > 0
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert 'agentladder_requests_total{endpoint="chat",model="tiny",status="200"}' in metrics
    assert "agentladder_running_sequences" in metrics
