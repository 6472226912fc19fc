"""Ported agent 1: a ReAct tool agent from `create_react_agent`, with a state schema of its own
(`remaining_steps`, a user name) and a checkpointer; a multi-turn conversation on one thread,
then a thread that runs out of steps."""

from typing import Annotated

from langchain_core.messages import AnyMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.message import add_messages
from langgraph.managed import RemainingSteps
from langgraph.prebuilt import create_react_agent
from ported_support import ScriptedChatModel, ai
from typing_extensions import TypedDict


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    remaining_steps: RemainingSteps
    user_name: str


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"It is sunny in {city}"


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def main(rec):
    model = ScriptedChatModel(
        messages=iter(
            [
                ai("", ("get_weather", {"city": "Paris"}, "call_1")),
                ai("It is sunny in Paris."),
                ai(
                    "Let me add.",
                    ("add", {"a": 2, "b": 3}, "call_2"),
                    ("get_weather", {"city": "Rome"}, "call_3"),
                ),
                ai("2 + 3 = 5 and it is sunny in Rome."),
                ai("Your name is Ada."),
                ai("", ("get_weather", {"city": "Oslo"}, "call_4")),
                ai("", ("get_weather", {"city": "Lima"}, "call_5")),
            ]
        )
    )
    agent = create_react_agent(
        model,
        [get_weather, add],
        state_schema=AgentState,
        prompt="You are a helpful assistant.",
        checkpointer=InMemorySaver(),
    )
    rec.add("mermaid", agent.get_graph().draw_mermaid())
    cfg = {"configurable": {"thread_id": "conversation"}}
    rec.add(
        "turn1",
        agent.invoke({"messages": [("user", "Weather in Paris?")], "user_name": "Ada"}, cfg),
    )
    rec.stream(
        "turn2.updates",
        agent.stream({"messages": [("user", "2+3, and Rome?")]}, cfg, stream_mode="updates"),
        unordered=True,  # the two tool calls run as parallel tasks (Sends)
    )
    rec.stream(
        "turn3.updates+messages",
        agent.stream(
            {"messages": [("user", "What is my name?")]}, cfg, stream_mode=["updates", "messages"]
        ),
    )
    rec.add("state", agent.get_state(cfg))
    history = list(agent.get_state_history(cfg))
    rec.add("history", [[list(s.next), s.metadata["source"], s.metadata["step"]] for s in history])

    short = {"configurable": {"thread_id": "short"}, "recursion_limit": 4}
    rec.stream(
        "short.values",
        agent.stream(
            {"messages": [("user", "Weather in Oslo then Lima?")]}, short, stream_mode="values"
        ),
    )
    rec.add("short.state", agent.get_state(short))
