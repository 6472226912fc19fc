"""Ported agent 3: multi-agent handoffs. `alice` is a `create_react_agent` whose handoff tool
returns `Command(goto="bob", graph=Command.PARENT)`; `bob` is a hand-built subgraph whose node
hands back to the parent's `summary` the same way; the parent is streamed with
`subgraphs=True`."""

from typing import Annotated

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import InjectedState, create_react_agent
from langgraph.types import Command
from ported_support import ScriptedChatModel, ai


@tool("transfer_to_bob")
def transfer_to_bob(
    state: Annotated[dict, InjectedState], tool_call_id: Annotated[str, InjectedToolCallId]
) -> Command:
    """Hand the conversation over to Bob."""
    done = ToolMessage("Transferred to bob", name="transfer_to_bob", tool_call_id=tool_call_id)
    return Command(
        goto="bob", graph=Command.PARENT, update={"messages": [*state["messages"], done]}
    )


def build(alice_model, bob_model):
    alice = create_react_agent(alice_model, [transfer_to_bob], name="alice")

    def bob_agent(state: MessagesState):
        return {"messages": [bob_model.invoke(state["messages"])]}

    def bob_handback(state: MessagesState):
        return Command(
            goto="summary",
            graph=Command.PARENT,
            update={"messages": [AIMessage("Bob is done.", name="bob")]},
        )

    bob = StateGraph(MessagesState)
    bob.add_node(bob_agent)
    bob.add_node(bob_handback)
    bob.add_edge(START, "bob_agent")
    bob.add_edge("bob_agent", "bob_handback")
    bob = bob.compile(name="bob")

    def summary(state: MessagesState):
        return {
            "messages": [AIMessage(f"{len(state['messages'])} messages so far.", name="summary")]
        }

    parent = StateGraph(MessagesState)
    parent.add_node("alice", alice, destinations=("bob",))
    parent.add_node("bob", bob, destinations=("summary",))
    parent.add_node(summary)
    parent.add_edge(START, "alice")
    parent.add_edge("summary", END)
    return parent.compile(checkpointer=InMemorySaver())


def scripts():
    return (
        ScriptedChatModel(
            messages=iter(
                [
                    ai("", ("transfer_to_bob", {}, "call_h1")),
                    ai("", ("transfer_to_bob", {}, "call_h2")),
                ]
            )
        ),
        ScriptedChatModel(messages=iter([ai("Bob here: the answer is 42."), ai("Bob again: 43.")])),
    )


def main(rec):
    graph = build(*scripts())
    rec.add("mermaid", graph.get_graph().draw_mermaid())
    question = {"messages": [("user", "Ask Bob for the answer.")]}
    cfg = {"configurable": {"thread_id": "one"}}
    rec.stream(
        "subgraphs.updates", graph.stream(question, cfg, stream_mode="updates", subgraphs=True)
    )
    rec.add("state", graph.get_state(cfg))
    rec.add("history", [[list(s.next), s.metadata["step"]] for s in graph.get_state_history(cfg)])

    graph = build(*scripts())
    cfg = {"configurable": {"thread_id": "two"}}
    rec.stream(
        "subgraphs.values+messages",
        graph.stream(question, cfg, stream_mode=["values", "messages"], subgraphs=True),
    )
    graph = build(*scripts())
    rec.add("invoke", graph.invoke(question, {"configurable": {"thread_id": "three"}}))
