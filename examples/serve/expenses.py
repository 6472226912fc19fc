"""Expense approvals, served by `hitl serve` (see README.md): `check` applies the policy,
`review` asks a human with an Agent Inbox `HumanInterrupt` (accept, edit, respond or ignore),
`record` books the outcome."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph, interrupt


class Expense(TypedDict, total=False):
    who: str
    amount: float
    purpose: str
    decision: str
    note: str


LIMIT = 100.0


def check(state: Expense) -> dict[str, Any]:
    return {"decision": "auto-approved" if state["amount"] <= LIMIT else "needs review"}


def review(state: Expense) -> dict[str, Any]:
    if state["decision"] == "auto-approved":
        return {}
    answer = interrupt(
        {
            "action_request": {
                "action": "approve_expense",
                "args": {
                    "who": state["who"],
                    "amount": state["amount"],
                    "purpose": state["purpose"],
                },
            },
            "config": {
                "allow_accept": True,
                "allow_edit": True,
                "allow_respond": True,
                "allow_ignore": True,
            },
            "description": f"{state['who']} spent ${state['amount']:.2f} on {state['purpose']}.",
        }
    )
    response = answer[0] if isinstance(answer, list) and answer else answer
    kind = response.get("type") if isinstance(response, dict) else None
    if kind == "accept":
        return {"decision": "approved"}
    if kind == "edit":
        args = (response.get("args") or {}).get("args") or {}
        return {"decision": "approved", "amount": float(args.get("amount", state["amount"]))}
    if kind == "response":
        return {"decision": "rejected", "note": str(response.get("args") or "")}
    return {"decision": "ignored"}


def record(state: Expense) -> dict[str, Any]:
    return {"note": state.get("note") or f"{state['decision']}: ${state['amount']:.2f}"}


builder = StateGraph(Expense)
builder.add_node("check", check)
builder.add_node("review", review)
builder.add_node("record", record)
builder.add_edge(START, "check")
builder.add_edge("check", "review")
builder.add_edge("review", "record")
builder.add_edge("record", END)
graph = builder.compile()
