"""Ported agent 14: a supervisor team. The supervisor is a `create_react_agent` whose handoff
tools answer `Command(goto=worker, graph=Command.PARENT)`; `math` is a `create_react_agent`
(`version="v1"`: one tool node runs both calls) added as a node, `research` another called from
a node function that keeps only its last message; workers report back by plain edges. Streams
`["updates", "tasks"]` with `subgraphs=True`; the pictures with `xray`, `get_subgraphs()`."""

from typing import Annotated

from langchain_core.messages import ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import InjectedState, create_react_agent
from langgraph.types import Command
from ported_support import ScriptedChatModel, ai


def handoff(worker: str):
    @tool(f"transfer_to_{worker}")
    def transfer(
        state: Annotated[dict, InjectedState], tool_call_id: Annotated[str, InjectedToolCallId]
    ) -> Command:
        """Hand the task to a worker."""
        done = ToolMessage(f"Handed to {worker}", tool_call_id=tool_call_id)
        return Command(
            goto=worker, graph=Command.PARENT, update={"messages": [*state["messages"], done]}
        )

    return transfer


@tool
def search(query: str) -> str:
    """Search the web."""
    return f"{query}: 10 in 2000, 20 in 2020"


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


@tool
def divide(a: float, b: float) -> float:
    """Divide two numbers."""
    return a / b


def build(supervisor_model, research_model, math_model):
    supervisor = create_react_agent(
        supervisor_model,
        [handoff("research"), handoff("math")],
        prompt="You manage a researcher and a mathematician.",
        name="supervisor",
    )
    research_agent = create_react_agent(research_model, [search], name="research_agent")
    math = create_react_agent(math_model, [multiply, divide], name="math", version="v1")

    def research(state: MessagesState):
        result = research_agent.invoke({"messages": state["messages"]})
        last = result["messages"][-1]
        last.name = "research"
        return {"messages": [last]}

    builder = StateGraph(MessagesState)
    builder.add_node(supervisor, destinations=("research", "math", END))
    builder.add_node(research)
    builder.add_node(math)
    builder.add_edge(START, "supervisor")
    builder.add_edge("research", "supervisor")
    builder.add_edge("math", "supervisor")
    return builder.compile(checkpointer=InMemorySaver())


def main(rec):
    graph = build(
        ScriptedChatModel(
            messages=iter(
                [
                    ai("", ("transfer_to_research", {}, "h1")),
                    ai("", ("transfer_to_math", {}, "h2")),
                    ai("GDP doubled: a factor of 2."),
                    ai("You are welcome."),
                ]
            )
        ),
        ScriptedChatModel(
            messages=iter(
                [ai("", ("search", {"query": "GDP"}, "s1")), ai("GDP went from 10 to 20.")]
            )
        ),
        ScriptedChatModel(
            messages=iter(
                [
                    ai(
                        "",
                        ("multiply", {"a": 10, "b": 2}, "m1"),
                        ("divide", {"a": 20, "b": 10}, "m2"),
                    ),
                    ai("20 / 10 = 2."),
                ]
            )
        ),
    )
    rec.add("mermaid", graph.get_graph().draw_mermaid())
    rec.add("mermaid.xray", graph.get_graph(xray=True).draw_mermaid())
    rec.add("subgraphs", sorted(name for name, _ in graph.get_subgraphs()))
    cfg = {"configurable": {"thread_id": "team"}}
    question = {"messages": [("user", "How much did GDP grow?")]}
    rec.stream(
        "run.updates+tasks",
        graph.stream(question, cfg, stream_mode=["updates", "tasks"], subgraphs=True),
    )
    rec.add("state", graph.get_state(cfg, subgraphs=True))
    rec.add("turn2", graph.invoke({"messages": [("user", "Thanks")]}, cfg))
    rec.add("history", [[list(s.next), s.metadata["step"]] for s in graph.get_state_history(cfg)])
