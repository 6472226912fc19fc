"""Chapter example 5: Command(goto=...) after an interrupt — conditional routing."""

from typing_extensions import TypedDict

from hitl_async.checkpoint.memory import InMemorySaver
from hitl_async.graph import END, START, StateGraph
from hitl_async.types import Command, interrupt


class EditState(TypedDict):
    draft: str
    final: str


def review_draft(state: EditState) -> Command:
    decision = interrupt({
        "question": "Accept, reject, or edit this draft?",
        "draft": state["draft"],
        "options": ["accept", "reject", "edit"],
    })
    if decision == "accept":
        return Command(update={"final": state["draft"]}, goto="publish")
    elif decision == "edit":
        return Command(goto="revise")
    else:
        return Command(update={"final": ""}, goto=END)


def revise(state: EditState) -> dict:
    revised = interrupt({"question": "Enter your revised draft:"})
    return {"draft": revised}


def publish(state: EditState) -> dict:
    return {"final": f"[PUBLISHED] {state['final']}"}


builder = StateGraph(EditState)
builder.add_node("review", review_draft, destinations=("publish", "revise", END))
builder.add_node("revise", revise)
builder.add_node("publish", publish)
builder.add_edge(START, "review")
builder.add_edge("revise", "review")
builder.add_edge("publish", END)
graph = builder.compile(checkpointer=InMemorySaver())
cfg = {"configurable": {"thread_id": "edit-1"}}

# Start: pauses at review
list(graph.stream({"draft": "First draft text", "final": ""}, cfg))
# Human chooses "edit" → goes to revise
list(graph.stream(Command(resume="edit"), cfg))
# Human enters revised text → back to review
list(graph.stream(Command(resume="Improved draft text"), cfg))
# Human accepts → published
list(graph.stream(Command(resume="accept"), cfg))
print(graph.get_state(cfg).values["final"])  # [PUBLISHED] Improved draft text
