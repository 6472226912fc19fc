"""Ported agent 10: a `create_react_agent` whose tool asks a human with `interrupt()` before
acting (the "add human-in-the-loop to a tool" how-to: accept, edit the arguments, or answer
instead of the tool), with the pause seen from `stream`, `get_state` and `invoke`, and a
`pre_model_hook` trimming what the model sees."""

from langchain_core.messages import AIMessage, RemoveMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.prebuilt import create_react_agent
from langgraph.types import Command, interrupt
from ported_support import ScriptedChatModel, ai


@tool
def book_hotel(hotel_name: str) -> str:
    """Book a hotel."""
    response = interrupt(
        {"action": "book_hotel", "args": {"hotel_name": hotel_name}, "description": "Approve?"}
    )
    if response["type"] == "accept":
        pass
    elif response["type"] == "edit":
        hotel_name = response["args"]["hotel_name"]
    elif response["type"] == "response":
        return f"The user said: {response['args']}"
    return f"Booked a stay at {hotel_name}."


def keep_last_three(state):
    return {"llm_input_messages": state["messages"][-3:]}


def main(rec):
    model = ScriptedChatModel(
        messages=iter(
            [
                ai("", ("book_hotel", {"hotel_name": "McKittrick"}, "call_1")),
                ai("Booked the McKittrick."),
                ai("", ("book_hotel", {"hotel_name": "Plaza"}, "call_2")),
                ai("Booked the Ritz instead."),
                ai("", ("book_hotel", {"hotel_name": "Hilton"}, "call_3")),
                ai("Understood, no booking."),
            ]
        )
    )
    agent = create_react_agent(
        model, [book_hotel], checkpointer=InMemorySaver(), pre_model_hook=keep_last_three
    )
    rec.add("mermaid", agent.get_graph().draw_mermaid())
    cfg = {"configurable": {"thread_id": "hotel"}}
    rec.stream("accept.stream", agent.stream({"messages": [("user", "book McKittrick")]}, cfg))
    rec.add("accept.paused", agent.get_state(cfg))
    rec.stream("accept.resume", agent.stream(Command(resume={"type": "accept"}), cfg))

    rec.add("edit.invoke", agent.invoke({"messages": [("user", "book the Plaza")]}, cfg))
    edit = {"type": "edit", "args": {"hotel_name": "Ritz"}}
    rec.stream(
        "edit.resume",
        agent.stream(Command(resume=edit), cfg, stream_mode=["updates", "messages"]),
    )

    rec.stream(
        "respond.values",
        agent.stream({"messages": [("user", "Hilton?")]}, cfg, stream_mode="values"),
    )
    answer = {"type": "response", "args": "do not book it"}
    rec.add("respond.resume", agent.invoke(Command(resume=answer), cfg))
    rec.add("state", agent.get_state(cfg))
    rec.add("history", [[list(s.next), s.metadata["step"]] for s in agent.get_state_history(cfg)])

    fresh = [RemoveMessage(id=REMOVE_ALL_MESSAGES), AIMessage("Starting over.")]
    agent.update_state(cfg, {"messages": fresh})
    rec.add("cleared", agent.get_state(cfg))
