import asyncio

import pytest
from pydantic import BaseModel

from agentladder.agents import Agent, ScriptedChat, Tool, ToolArgumentError, tool


class Dose(BaseModel):
    daily_mg: float
    over_limit: bool


@tool
def check_dose(drug: str, daily_mg: float, limit_mg: float = 4000) -> Dose:
    """Check a daily dose against a limit.

    More text that is not the summary.

    Args:
        drug: generic name, lower case
        daily_mg: the most the direction allows in 24 hours,
            in mg
    """
    if drug == "boom":
        raise RuntimeError("formulary offline")
    return Dose(daily_mg=daily_mg, over_limit=daily_mg > limit_mg)


def test_schema_from_hints_and_docstring():
    spec = check_dose.to_openai()["function"]
    assert spec["name"] == "check_dose"
    assert spec["description"] == "Check a daily dose against a limit."
    props = spec["parameters"]["properties"]
    assert props["drug"] == {"type": "string", "description": "generic name, lower case"}
    assert props["daily_mg"]["type"] == "number"
    assert props["daily_mg"]["description"] == "the most the direction allows in 24 hours, in mg"
    assert props["limit_mg"]["default"] == 4000
    assert spec["parameters"]["required"] == ["drug", "daily_mg"]


def test_arguments_validated_before_the_call():
    with pytest.raises(ToolArgumentError, match="daily_mg"):
        check_dose.validate({"drug": "x", "daily_mg": "lots"})
    with pytest.raises(ToolArgumentError, match="colour: Extra inputs"):
        check_dose.validate({"drug": "x", "daily_mg": 1, "colour": "red"})
    assert check_dose.validate({"drug": "x", "daily_mg": "12.5"}) == {"drug": "x", "daily_mg": 12.5, "limit_mg": 4000}


def test_errors_come_back_as_results():
    bad = asyncio.run(check_dose.call({"drug": "x"}))
    assert bad.value is None and bad.text.startswith("error: invalid arguments for check_dose: daily_mg: Field required")
    assert bad.error_type == "ToolArgumentError"
    failed = asyncio.run(check_dose.call({"drug": "boom", "daily_mg": 1}))
    assert failed.text == "error: RuntimeError: formulary offline" and failed.error_type == "RuntimeError"
    ok = asyncio.run(check_dose.call({"drug": "x", "daily_mg": 5000}))
    assert ok.value == Dose(daily_mg=5000, over_limit=True)
    assert ok.text == '{"daily_mg": 5000.0, "over_limit": true}'


def test_async_tool_and_direct_call():
    @tool(name="lookup", description="Look a drug up.")
    async def find(name: str) -> dict:
        await asyncio.sleep(0)
        return {"name": name}

    assert isinstance(find, Tool) and find.is_async and find.name == "lookup"
    assert asyncio.run(find.call({"name": "x"})).value == {"name": "x"}
    assert check_dose("x", 10).over_limit is False  # still callable as a function


def test_bad_tools_are_refused():
    def spread(*args: int) -> int:
        return sum(args)

    with pytest.raises(ValueError, match=r"\*args"):
        tool(spread)
    with pytest.raises(ValueError, match="tool name"):
        tool(lambda x: x)
    with pytest.raises(ValueError, match="share a name"):
        Agent(ScriptedChat([]), tools=[check_dose, check_dose])


def test_agent_as_tool_of_another(rt):
    inner = Agent(ScriptedChat(['{"daily_mg": 1500, "over_limit": false}']), output=Dose, name="doser",
                  description="Works out a dose.")
    t = inner.as_tool()
    assert t.name == "doser" and t.description == "Works out a dose."
    assert t.parameters["properties"]["request"]["type"] == "string"
    from agentladder.data.schema import ToolCall

    outer = Agent(ScriptedChat([ToolCall(name="doser", arguments={"request": "500 mg tid"}), "It is 1500 mg."]),
                  tools=[inner], name="outer")
    result = outer.run("dose?", runtime=rt)
    assert result.output == "It is 1500 mg."
    tool_turn = result.messages[-2]
    assert tool_turn.role == "tool" and tool_turn.content == '{"daily_mg": 1500.0, "over_limit": false}'
    # both agents left a trajectory in the same session
    rows = rt.store.trajectories()
    assert sorted(r["agent"] for r in rows) == ["doser", "outer"]
    assert len({r["session"] for r in rows}) == 1
