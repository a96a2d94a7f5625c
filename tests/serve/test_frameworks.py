"""Agent frameworks calling the server as users run them: a Strands agent, and LangGraph over langchain-openai."""

from typing import Annotated, Literal

from pydantic import BaseModel, Field


class Directions(BaseModel):
    form: Literal["tablet", "capsule", "liquid"]
    as_needed: bool
    doses_per_day: Annotated[int, Field(ge=1, le=4)]


class WeatherArgs(BaseModel):
    city: Literal["Paris", "Rome"]
    days: Annotated[int, Field(ge=1, le=3)]


def test_a_strands_agent_answers_through_the_server(server, hooks):
    from strands import Agent
    from strands.models.openai import OpenAIModel

    client_args = {"base_url": server.base_url, "api_key": "test-key"}
    # A random tiny model's free text runs to max_tokens, which Strands raises on; a JSON answer ends, and
    # the params Strands passes through (response_format here) reach the server.
    plain = OpenAIModel(client_args=client_args, model_id="alpha",
                        params={"max_tokens": 96, "temperature": 0, "response_format": {"type": "json_object"}})
    hooks.finished.clear()
    result = Agent(model=plain, system_prompt="Be brief.", callback_handler=None)("Say hi")
    served = hooks.finished[-1]["response"]["choices"][0]["message"]["content"] or ""
    assert served.startswith("{") and str(result).strip() == served.strip(), "the agent's answer is the server's"
    assert hooks.finished[-1]["usage"].completion_tokens > 0
    # Strands' structured output first offers its output tool with tool_choice auto, where a random model writes
    # free text; forced on the second turn, the schema holds. tests/serve/test_real_model.py runs that on SmolLM2.


def test_a_langgraph_graph_calls_a_tool_through_langchain_openai(server):
    from langchain_core.tools import StructuredTool
    from langchain_openai import ChatOpenAI
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    calls = []

    def weather(city: str, days: int) -> str:
        calls.append((city, days))
        return f"sunny in {city} for {days} days"

    tool = StructuredTool.from_function(weather, name="weather", description="Weather in a city",
                                        args_schema=WeatherArgs)
    llm = ChatOpenAI(base_url=server.base_url, api_key="test-key", model="beta", temperature=0, max_tokens=120)
    caller = llm.bind_tools([tool], tool_choice="weather")

    def model_node(state: MessagesState) -> dict:
        return {"messages": [caller.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", model_node)
    graph.add_node("tools", ToolNode([tool]))
    graph.add_edge(START, "model")
    graph.add_edge("model", "tools")
    graph.add_edge("tools", END)
    out = graph.compile().invoke({"messages": [("user", "Weather in Rome for two days?")]})
    assert len(calls) == 1 and WeatherArgs(city=calls[0][0], days=calls[0][1])
    assert out["messages"][-1].type == "tool" and out["messages"][-1].content.startswith("sunny in")
    structured = llm.with_structured_output(Directions, method="json_schema").invoke("one tablet as needed")
    assert isinstance(structured, Directions)
