import pytest
from pydantic import BaseModel, Field

from agentladder.agents import (
    Agent,
    AgentError,
    Escalate,
    OutputValidationError,
    ScriptedChat,
    tool,
)
from agentladder.data.schema import ToolCall


class Parse(BaseModel):
    drug: str
    strength_mg: float = Field(gt=0)


def test_validation_retry_shows_the_error_then_succeeds(rt):
    model = ScriptedChat(["not json", '{"drug": "x", "strength_mg": -1}', 'Sure: {"drug": "x", "strength_mg": 5}'])
    agent = Agent(model, system="Parse.", output=Parse, max_retries=2)
    result = agent.run("x 5 mg", runtime=rt)
    assert result.output == Parse(drug="x", strength_mg=5) and result.attempts == 3
    # the model was told what was wrong each time
    second, third = model.calls[1].messages, model.calls[2].messages
    assert second[-1].role == "user" and "no JSON object" in second[-1].content
    assert "strength_mg: Input should be greater than 0" in third[-1].content
    # the system prompt carries the schema
    assert '"strength_mg"' in model.calls[0].messages[0].content
    # failed answers are kept but not trained on; the valid one is
    flags = [(m.role, m.is_trained) for m in result.messages if m.role == "assistant"]
    assert flags == [("assistant", False), ("assistant", False), ("assistant", True)]
    stored = rt.store.trajectory(result.trajectory_id)
    assert stored.messages == result.messages and stored.metadata["output"] == {"drug": "x", "strength_mg": 5.0}


def test_validation_failure_after_bounded_retries(rt):
    model = ScriptedChat(['{"drug": 3}'], default='{"drug": 3}')
    agent = Agent(model, output=Parse, max_retries=1, name="parser")
    with pytest.raises(OutputValidationError) as info:
        agent.run("x", runtime=rt)
    assert len(model.calls) == 2  # one try and one retry
    msg = str(info.value)
    assert "agent 'parser': no valid output after 2 attempts" in msg and "strength_mg: Field required" in msg
    (row,) = rt.store.trajectories()
    assert row["status"] == "invalid" and not row["conversation"].has_trainable_turn


def test_invalid_output_can_escalate_instead(rt):
    agent = Agent(ScriptedChat([], default="??"), output=Parse, max_retries=0, escalate_invalid=True)
    with pytest.raises(Escalate) as info:
        agent.run("x", runtime=rt)
    assert info.value.reason.startswith("invalid output: no JSON object") and info.value.payload["output"] == "??"


def test_review_if_escalates_a_valid_output(rt):
    agent = Agent(ScriptedChat(['{"drug": "x", "strength_mg": 9000}']), output=Parse,
                  review_if=lambda p: "strength above 1000 mg" if p.strength_mg > 1000 else None)
    with pytest.raises(Escalate, match="strength above 1000 mg"):
        agent.run("x", runtime=rt)
    assert rt.store.trajectories()[0]["status"] == "escalated"


def test_tool_arguments_validated_in_the_loop(rt):
    seen = []

    @tool
    def daily(strength_mg: float, doses: int) -> float:
        """Daily dose in mg."""
        seen.append((strength_mg, doses))
        return strength_mg * doses

    model = ScriptedChat([ToolCall(name="daily", arguments={"strength_mg": 500, "doses": "three"}),
                          ToolCall(name="nope", arguments={}),
                          ToolCall(name="daily", arguments={"strength_mg": 500, "doses": 3}), "1500 mg"])
    result = Agent(model, tools=[daily]).run("how much?", runtime=rt)
    tool_turns = [m.content for m in result.messages if m.role == "tool"]
    assert tool_turns[0].startswith("error: invalid arguments for daily: doses: Input should be a valid integer")
    assert tool_turns[1] == "error: no tool named 'nope' (tools: daily)"
    assert tool_turns[2] == "1500.0"
    assert seen == [(500.0, 3)]  # the function ran only with valid arguments
    assert [c.name for c in result.tool_calls] == ["daily", "nope", "daily"] and result.output == "1500 mg"
    # the model was offered the tool's schema
    assert model.calls[0].tools[0]["function"]["name"] == "daily"


def test_parallel_tool_calls_answer_in_call_order(rt):
    @tool
    async def echo(text: str) -> str:
        """Echo."""
        return text.upper()

    calls = [ToolCall(name="echo", arguments={"text": t}) for t in ("a", "b", "c")]
    result = Agent(ScriptedChat([calls, "done"]), tools=[echo]).run("go", runtime=rt)
    assert [m.content for m in result.messages if m.role == "tool"] == ["A", "B", "C"]
    ids = [m.tool_call_id for m in result.messages if m.role == "tool"]
    assert ids == [c.id for c in result.messages[1].tool_calls] and len(set(ids)) == 3


def test_endless_tool_calls_are_bounded(rt):
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    agent = Agent(ScriptedChat([], default=ToolCall(name="ping")), tools=[ping], max_turns=3, name="looper")
    with pytest.raises(AgentError, match="called tools 3 times without answering"):
        agent.run("go", runtime=rt)


def test_memory_is_per_session(rt):
    model = ScriptedChat(["Hello Ann", "Your name is Ann", "Hello Bob"])
    agent = Agent(model, system="Be brief.", memory=True, name="chat")
    agent.run("I am Ann", session="s1", runtime=rt)
    agent.run("Who am I?", session="s1", runtime=rt)
    agent.run("I am Bob", session="s2", runtime=rt)
    second = [m.content for m in model.calls[1].messages]
    assert second == ["Be brief.", "I am Ann", "Hello Ann", "Who am I?"]
    third = [m.content for m in model.calls[2].messages]
    assert third == ["Be brief.", "I am Bob"]  # session s2 never sees s1's conversation
