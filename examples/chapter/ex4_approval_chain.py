"""Chapter example 4: a chain of approvals, one interrupt per node."""

from typing import Annotated

from typing_extensions import TypedDict

from hitl_async.checkpoint.memory import InMemorySaver
from hitl_async.graph import END, START, StateGraph
from hitl_async.types import Command, interrupt


def merge_dicts(x: dict, y: dict) -> dict:
    return {**x, **y}


class WorkflowState(TypedDict):
    action: str
    amount: float
    approvals: Annotated[dict, merge_dicts]
    outcome: str


def manager_review(state: WorkflowState) -> dict:
    answer = interrupt({
        "stage": "manager",
        "question": f"Approve {state['action']} for ${state['amount']:.2f}?",
    })
    return {"approvals": {"manager": answer == "yes"}}


def compliance_review(state: WorkflowState) -> dict:
    if not state["approvals"].get("manager"):
        return {"approvals": {"compliance": False}}
    answer = interrupt({"stage": "compliance", "question": "Compliance sign-off?"})
    return {"approvals": {"compliance": answer == "yes"}}


def execute_workflow(state: WorkflowState) -> dict:
    if all(state["approvals"].values()):
        return {"outcome": f"EXECUTED: {state['action']}"}
    return {"outcome": f"REJECTED: {state['action']}"}


builder = StateGraph(WorkflowState)
builder.add_node("manager", manager_review)
builder.add_node("compliance", compliance_review)
builder.add_node("execute", execute_workflow)
builder.add_edge(START, "manager")
builder.add_edge("manager", "compliance")
builder.add_edge("compliance", "execute")
builder.add_edge("execute", END)
graph = builder.compile(checkpointer=InMemorySaver())
cfg = {"configurable": {"thread_id": "workflow-1"}}
initial = {"action": "vendor-contract", "amount": 50000.0, "approvals": {}, "outcome": ""}

# Step 1: manager interrupt
list(graph.stream(initial, cfg))
# Step 2: compliance interrupt
list(graph.stream(Command(resume="yes"), cfg))
# Step 3: final execution
list(graph.stream(Command(resume="yes"), cfg))
print(graph.get_state(cfg).values["outcome"])  # EXECUTED: vendor-contract
