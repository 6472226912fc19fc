"""A reusable approval step as a subgraph: a purchase workflow hands the request to an approval
subgraph whose reviewer pauses for a human; the parent sees the pause and resumes it by id.

    python examples/subgraph_approval.py                      # answers "approve"
    python examples/subgraph_approval.py --answer reject --store sqlite:///purchases.db
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from typing_extensions import TypedDict

from hitl_async import END, START, Command, StateGraph, connect, interrupt

calls: list[str] = []


class Purchase(TypedDict, total=False):
    item: str
    amount: float
    risk: str
    decision: str
    status: str


def assess(state: Purchase) -> dict[str, Any]:
    """Runs once: its result is in the subgraph's checkpoint when the reviewer pauses."""
    calls.append("assess")
    return {"risk": "high" if state["amount"] > 1000 else "low"}


def review(state: Purchase) -> dict[str, Any]:
    calls.append("review")
    answer = interrupt(
        {"question": f"Approve {state['item']} for ${state['amount']:.2f}?", "risk": state["risk"]}
    )
    return {"decision": answer}


def approval_subgraph() -> Any:
    """The reusable approval step: assess the risk, then ask a reviewer."""
    sub = StateGraph(Purchase)
    sub.add_node("assess", assess)
    sub.add_node("review", review)
    sub.add_edge(START, "assess")
    sub.add_edge("assess", "review")
    sub.add_edge("review", END)
    return sub.compile()


def order(state: Purchase) -> dict[str, Any]:
    calls.append("order")
    verdict = "ordered" if state["decision"] == "approve" else "cancelled"
    return {"status": f"{state['item']}: {verdict}"}


def build(store: str) -> Any:
    builder = StateGraph(Purchase)
    builder.add_node("approval", approval_subgraph())
    builder.add_node("order", order)
    builder.add_edge(START, "approval")
    builder.add_edge("approval", "order")
    builder.add_edge("order", END)
    return builder.compile(checkpointer=connect(store))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="memory://", help="checkpoint store URL")
    parser.add_argument("--answer", default="approve", help="approve or reject")
    parser.add_argument("--thread", default="purchase-1")
    args = parser.parse_args(argv)
    graph = build(args.store)
    cfg = {"configurable": {"thread_id": args.thread}}
    graph.invoke({"item": "laptop", "amount": 2400.0}, cfg)
    snap = graph.get_state(cfg, subgraphs=True)
    (pending,) = snap.interrupts
    print(f"paused in {snap.next}: {pending.value['question']} (risk {pending.value['risk']})")
    print(f"subgraph waiting at {snap.tasks[0].state.next}")
    result = graph.invoke(Command(resume={pending.id: args.answer}), cfg)
    print(f"status: {result['status']}")
    print(f"node runs: {calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
