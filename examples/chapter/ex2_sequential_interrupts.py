"""Chapter example 2: multiple interrupts in one node, sequential resume."""

from typing_extensions import TypedDict

from hitl_async.checkpoint.memory import InMemorySaver
from hitl_async.graph import END, START, StateGraph
from hitl_async.types import Command, interrupt


class ReviewState(TypedDict):
    content: str
    title_ok: bool
    body_ok: bool
    published: bool


def editorial_review(state: ReviewState) -> dict:
    # First interrupt: review the title
    title_answer = interrupt({
        "question": "Is the title acceptable?",
        "title": state["content"][:50],
    })
    # Second interrupt: review the body (only reached after first resume)
    body_answer = interrupt({
        "question": "Is the body acceptable?",
        "preview": state["content"][:200],
    })
    return {
        "title_ok": title_answer == "yes",
        "body_ok": body_answer == "yes",
    }


def publish(state: ReviewState) -> dict:
    if state["title_ok"] and state["body_ok"]:
        return {"published": True}
    return {"published": False}


builder = StateGraph(ReviewState)
builder.add_node("review", editorial_review)
builder.add_node("publish", publish)
builder.add_edge(START, "review")
builder.add_edge("review", "publish")
builder.add_edge("publish", END)
graph = builder.compile(checkpointer=InMemorySaver())
cfg = {"configurable": {"thread_id": "review-1"}}

# Run 1: graph pauses at the title interrupt
list(graph.stream({"content": "My Article: full body here...", "title_ok": False, "body_ok": False, "published": False}, cfg))  # noqa: E501
# Resume 1: answer the title question → graph pauses at the body interrupt
list(graph.stream(Command(resume="yes"), cfg))
# Resume 2: answer the body question → graph continues to "publish"
list(graph.stream(Command(resume="yes"), cfg))
final = graph.get_state(cfg)
print(final.values["published"])  # True
