"""Schemas enforced while decoding: objects that list their properties are closed to other keys."""

import json

import jsonschema
import openai
import pytest

from agentladder.serve.structured import closed


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


def test_closed_adds_additional_properties_false_only_where_properties_are_listed():
    schema = {
        "type": "object",
        "properties": {
            "properties": {"type": "object", "properties": {"a": {"type": "string"}}},  # a key named "properties"
            "open": {"type": "object", "properties": {"b": {}}, "additionalProperties": True},
            "any": {"type": "object"},
            "pick": {"enum": [{"properties": {}}]},
        },
        "$defs": {"D": {"properties": {"c": {"type": "integer"}}}},
        "required": ["properties"],
    }
    out = closed(schema)
    assert out["additionalProperties"] is False
    assert out["properties"]["properties"]["additionalProperties"] is False
    assert "additionalProperties" not in out["properties"]["properties"]["properties"], "a property map is not a schema"
    assert out["properties"]["open"]["additionalProperties"] is True, "an explicit choice stays"
    assert "additionalProperties" not in out["properties"]["any"], "json_object stays open"
    assert out["properties"]["pick"]["enum"] == [{"properties": {}}], "values are not schemas"
    assert out["$defs"]["D"]["additionalProperties"] is False
    assert "additionalProperties" not in schema, "the caller's schema is not changed"
    jsonschema.Draft202012Validator.check_schema(out)


def test_a_tool_whose_schema_is_open_gets_only_its_declared_arguments(client):
    """A pydantic-made schema (no additionalProperties) is closed, so even a random model's call ends."""
    tool = {"type": "function", "function": {"name": "weather", "description": "Weather in a city", "parameters": {
        "type": "object", "required": ["city", "days"],
        "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]},
                       "days": {"type": "integer", "minimum": 1, "maximum": 3}}}}}
    reply = client.chat.completions.create(
        model="beta", messages=[{"role": "user", "content": "Weather in Rome for two days?"}], tools=[tool],
        tool_choice={"type": "function", "function": {"name": "weather"}}, temperature=0, max_tokens=120)
    (call,) = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls"
    assert set(json.loads(call.function.arguments)) == {"city", "days"}
