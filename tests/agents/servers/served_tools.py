"""A tools file for `agentladder tools serve` in the tests: two tools, a failing one, and an agent with a script."""

from pydantic import BaseModel

from agentladder.agents import Agent, ScriptedChat, tool


class Sum(BaseModel):
    total: int
    terms: list[int]


@tool
def total(terms: list[int]) -> Sum:
    """Add the terms up.

    Args:
        terms: the integers to add
    """
    return Sum(total=sum(terms), terms=terms)


@tool
def evens(upto: int) -> list[int]:
    """The even numbers below a bound.

    Args:
        upto: the bound (excluded)
    """
    return list(range(0, upto, 2))


@tool
def explode(why: str) -> str:
    """Always fails.

    Args:
        why: the reason to give
    """
    raise ValueError(why)


helper = Agent(ScriptedChat(lambda messages, tools: f"You asked: {messages[-1].content}"), name="helper",
               description="Answers a request in words.")
