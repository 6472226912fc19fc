"""Chapter example 1: basic single interrupt + resume (imports renamed from langgraph)."""

from typing_extensions import TypedDict

from hitl_async.checkpoint.memory import InMemorySaver
from hitl_async.graph import END, START, StateGraph
from hitl_async.types import Command, interrupt


class ApprovalState(TypedDict):
    action: str
    amount: float
    decision: str


def request_approval(state: ApprovalState) -> dict:
    # interrupt() pauses here and surfaces the value to the caller.
    # On resume, it returns whatever was passed to Command(resume=...).
    answer = interrupt({
        "question": f"Approve {state['action']} for ${state['amount']:.2f}?",
        "options": ["yes", "no"],
    })
    return {"decision": "approved" if answer == "yes" else "rejected"}


def execute(state: ApprovalState) -> dict:
    return {"action": f"{state['decision'].upper()}: {state['action']}"}


builder = StateGraph(ApprovalState)
builder.add_node("request_approval", request_approval)
builder.add_node("execute", execute)
builder.add_edge(START, "request_approval")
builder.add_edge("request_approval", "execute")
builder.add_edge("execute", END)
graph = builder.compile(checkpointer=InMemorySaver())
cfg = {"configurable": {"thread_id": "t1"}}

# --- First run: graph pauses at interrupt ---
for event in graph.stream({"action": "transfer", "amount": 500.0}, cfg):
    print(event)

# Inspect the interrupt
snap = graph.get_state(cfg)
interrupt_obj = snap.interrupts[0]
print(interrupt_obj.value)
print(interrupt_obj.id)

# --- Resume: pass the human's answer ---
for event in graph.stream(Command(resume="yes"), cfg):
    print(event)
