"""Chapter example 3: resume by interrupt id."""

from typing_extensions import TypedDict

from hitl_async.checkpoint.memory import InMemorySaver
from hitl_async.graph import END, START, StateGraph
from hitl_async.types import Command, Interrupt, interrupt


class SignoffState(TypedDict):
    proposal: str
    legal_ok: bool
    finance_ok: bool


def dual_signoff(state: SignoffState) -> dict:
    # Both interrupt() calls appear in the same node execution.
    # On the first run, the first one fires. On the first resume, the second fires.
    legal = interrupt({"department": "legal", "item": state["proposal"]})
    finance = interrupt({"department": "finance", "item": state["proposal"]})
    return {"legal_ok": legal == "approved", "finance_ok": finance == "approved"}


builder = StateGraph(SignoffState)
builder.add_node("signoff", dual_signoff)
builder.add_edge(START, "signoff")
builder.add_edge("signoff", END)
graph = builder.compile(checkpointer=InMemorySaver())
cfg = {"configurable": {"thread_id": "signoff-1"}}

# First stream: pauses at the legal interrupt
list(graph.stream({"proposal": "Acquire WidgetCo", "legal_ok": False, "finance_ok": False}, cfg))
# Inspect the interrupt id from StateSnapshot
snap = graph.get_state(cfg)
legal_interrupt: Interrupt = snap.interrupts[0]
legal_id = legal_interrupt.id
print(f"Legal interrupt id: {legal_id}")
# Option A — sequential per-id resume (one call per interrupt):
# Resume with the legal answer by id; execution advances to the finance interrupt.
list(graph.stream(Command(resume={legal_id: "approved"}), cfg))
snap2 = graph.get_state(cfg)
finance_interrupt: Interrupt = snap2.interrupts[0]
list(graph.stream(Command(resume={finance_interrupt.id: "approved"}), cfg))
final = graph.get_state(cfg)
print(final.values["legal_ok"], final.values["finance_ok"])  # True True
