"""Ported agent 16: a reflection loop on a pydantic state. A writer drafts, a critic answers
as a human would (role swapped), and the loop ends on approval or when `RemainingSteps` says
the budget is nearly spent (`IsLastStep` is read too); the budget is set with
`with_config(recursion_limit=...)`. A loop that ignores the budget fails with
`GraphRecursionError`, and its state after the failure is read back."""

from typing import Annotated

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.managed import IsLastStep, RemainingSteps
from ported_support import ScriptedChatModel, ai
from pydantic import BaseModel, Field


class Essay(BaseModel):
    messages: Annotated[list[AnyMessage], add_messages]
    drafts: int = 0
    budget_seen: list[int] = Field(default_factory=list)
    remaining_steps: RemainingSteps = 0
    is_last_step: IsLastStep = False


def build(writer_model, critic_model, *, heed_budget=True):
    def write(state: Essay):
        reply = writer_model.invoke(state.messages)
        return {
            "messages": [reply],
            "drafts": state.drafts + 1,
            "budget_seen": [*state.budget_seen, state.remaining_steps],
        }

    def critique(state: Essay):
        swapped = [
            HumanMessage(m.content) if isinstance(m, AIMessage) else AIMessage(m.content)
            for m in state.messages[1:]
        ]
        reply = critic_model.invoke(swapped)
        note = f"{reply.content} (last step: {state.is_last_step})"
        return {"messages": [HumanMessage(note, name="critic")]}

    def next_step(state: Essay):
        if "LGTM" in state.messages[-1].content:
            return END
        if heed_budget and state.remaining_steps <= 2:
            return END
        return "write"

    builder = StateGraph(Essay)
    builder.add_node(write)
    builder.add_node(critique)
    builder.add_edge(START, "write")
    builder.add_edge("write", "critique")
    builder.add_conditional_edges("critique", next_step, ["write", END])
    return builder.compile(checkpointer=InMemorySaver())


def critic(*notes):
    return ScriptedChatModel(messages=iter([ai(n) for n in notes]))


def main(rec):
    writer = ScriptedChatModel(
        messages=iter([ai(f"Draft {n} of the essay.") for n in range(1, 20)])
    )
    graph = build(writer, critic("Too short.", "LGTM"))
    rec.add("mermaid", graph.get_graph().draw_mermaid())
    rec.add("input_schema", graph.get_input_jsonschema())
    cfg = {"configurable": {"thread_id": "approved"}}
    rec.stream(
        "approved.messages",
        graph.stream({"messages": [("user", "Write an essay")]}, cfg, stream_mode="messages"),
    )
    rec.add("approved.state", graph.get_state(cfg))

    graph = build(writer, critic(*["More detail."] * 10)).with_config(recursion_limit=7)
    cfg = {"configurable": {"thread_id": "budget"}}
    rec.stream(
        "budget.updates",
        graph.stream({"messages": [("user", "Write an essay")]}, cfg, stream_mode="updates"),
    )
    rec.add("budget.state", graph.get_state(cfg))

    graph = build(writer, critic(*["More detail."] * 10), heed_budget=False)
    cfg = {"configurable": {"thread_id": "runaway"}, "recursion_limit": 5}
    try:
        graph.invoke({"messages": [("user", "Write an essay")]}, cfg)
    except GraphRecursionError as exc:
        rec.error("runaway.error", exc)
    rec.add("runaway.state", graph.get_state(cfg))
    rec.add(
        "runaway.history",
        [[list(s.next), s.metadata["step"]] for s in graph.get_state_history(cfg)],
    )
