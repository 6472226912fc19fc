"""Ported agent 13: a customer-support bot with stages. A conditional entry routes a new
conversation to `triage`, which hands over with `Command(goto=...)` to `billing` or `tech`;
billing's `ToolNode` reads orders and records refunds in an `InMemoryStore` through
`ToolRuntime`, a refund tool updates the stage with `Command(update=...)`, and a
`wrap_tool_call` wrapper asks a human to review refunds (agent-inbox `HumanInterrupt`: accept,
edit, respond); a later turn skips triage."""

from typing import Literal

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, ToolRuntime, tools_condition
from langgraph.prebuilt.interrupt import ActionRequest, HumanInterrupt, HumanInterruptConfig
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command, interrupt
from ported_support import ScriptedChatModel, ai


class SupportState(MessagesState):
    stage: str
    customer: str


@tool
def lookup_order(order_id: str, runtime: ToolRuntime) -> str:
    """Look an order up."""
    item = runtime.store.get(("orders", runtime.state["customer"]), order_id)
    return f"order {order_id}: {item.value if item else 'not found'}"


@tool
def issue_refund(order_id: str, amount: int, runtime: ToolRuntime) -> Command:
    """Refund (part of) an order."""
    runtime.store.put(("refunds", runtime.state["customer"]), order_id, {"amount": amount})
    done = ToolMessage(f"refunded {amount}", tool_call_id=runtime.tool_call_id)
    return Command(update={"stage": "refunded", "messages": [done]})


def review_refunds(request, execute):
    """Every refund waits for a human; other tools run as asked."""
    call = request.tool_call
    if call["name"] != "issue_refund":
        return execute(request)
    ask = HumanInterrupt(
        action_request=ActionRequest(action=call["name"], args=call["args"]),
        config=HumanInterruptConfig(
            allow_ignore=False, allow_respond=True, allow_edit=True, allow_accept=True
        ),
        description=f"Refund for {request.state['customer']}?",
    )
    response = interrupt([ask])[0]
    if response["type"] == "accept":
        return execute(request)
    if response["type"] == "edit":
        return execute(request.override(tool_call={**call, "args": response["args"]["args"]}))
    return ToolMessage(response["args"], tool_call_id=call["id"], name=call["name"], status="error")


def build(triage_model, billing_model, store):
    def triage(state: SupportState) -> Command[Literal["billing", "tech"]]:
        reply = triage_model.invoke(state["messages"])
        goto = "billing" if "billing" in reply.content else "tech"
        return Command(goto=goto, update={"stage": goto, "messages": [reply]})

    def billing(state: SupportState):
        return {"messages": [billing_model.invoke(state["messages"])]}

    def tech(state: SupportState):
        return {"messages": [AIMessage("Have you tried turning it off and on?", name="tech")]}

    def entry(state: SupportState) -> Literal["triage", "billing"]:
        return "billing" if state.get("stage") in ("billing", "refunded") else "triage"

    builder = StateGraph(SupportState)
    builder.add_node(triage)
    builder.add_node(billing)
    builder.add_node(tech)
    builder.add_node("tools", ToolNode([lookup_order, issue_refund], wrap_tool_call=review_refunds))
    builder.add_conditional_edges(START, entry)
    builder.add_conditional_edges("billing", tools_condition)
    builder.add_edge("tools", "billing")
    builder.add_edge("tech", END)
    return builder.compile(checkpointer=InMemorySaver(), store=store)


def main(rec):
    store = InMemoryStore()
    store.put(("orders", "c1"), "42", {"item": "kettle", "paid": 30})
    store.put(("orders", "c2"), "7", {"item": "toaster", "paid": 25})
    triage_model = ScriptedChatModel(
        messages=iter([ai("Routing to billing."), ai("Routing to tech."), ai("To billing.")])
    )
    billing_model = ScriptedChatModel(
        messages=iter(
            [
                ai("", ("lookup_order", {"order_id": "42"}, "call_l1")),
                ai("", ("issue_refund", {"order_id": "42", "amount": 30}, "call_r1")),
                ai("Refund of 20 issued."),
                ai("You are welcome."),
                ai("", ("issue_refund", {"order_id": "7", "amount": 25}, "call_r2")),
                ai("A manager will call you."),
            ]
        )
    )
    graph = build(triage_model, billing_model, store)
    rec.add("mermaid", graph.get_graph().draw_mermaid())

    cfg = {"configurable": {"thread_id": "refund"}}
    start = {"messages": [("user", "Refund order 42 please")], "customer": "c1"}
    rec.stream("refund.updates", graph.stream(start, cfg, stream_mode="updates"))
    rec.add("refund.paused", graph.get_state(cfg))
    edit = {
        "type": "edit",
        "args": {"action": "issue_refund", "args": {"order_id": "42", "amount": 20}},
    }
    rec.stream("refund.edit", graph.stream(Command(resume=[edit]), cfg, stream_mode="updates"))
    rec.add("refund.done", graph.get_state(cfg))
    rec.add("refund.turn2", graph.invoke({"messages": [("user", "Thanks!")]}, cfg))
    rec.add("store.refunds.c1", [[i.key, i.value] for i in store.search(("refunds", "c1"))])

    cfg = {"configurable": {"thread_id": "tech"}}
    rec.add("tech.invoke", graph.invoke({"messages": [("user", "It won't boot")]}, cfg))

    cfg = {"configurable": {"thread_id": "refused"}}
    start = {"messages": [("user", "Refund order 7")], "customer": "c2"}
    rec.add("refused.invoke", graph.invoke(start, cfg))
    rec.stream(
        "refused.resume",
        graph.stream(
            Command(resume=[{"type": "response", "args": "Refunds over 20 need a manager."}]),
            cfg,
            stream_mode=["updates", "values"],
        ),
    )
    rec.add("store.refunds.c2", [[i.key, i.value] for i in store.search(("refunds", "c2"))])
    rec.add(
        "refused.history",
        [[list(s.next), s.metadata["step"]] for s in graph.get_state_history(cfg)],
    )
