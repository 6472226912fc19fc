"""The expense-approval graph served by the HTTP example.

`check` applies the expense policy, `approve` asks a manager with `interrupt()` (the thread
pauses in the store until someone answers), and `pay` records the payment. Any process sharing
the store can run or resume a thread: the web app only queues runs, a worker executes them.

    build("postgresql://postgres@127.0.0.1:5432/test", schema="expenses")   # explicit store
    graph()                                                                # from $HITL_STORE

`graph` is a zero-argument factory, so the `hitl` command can serve it too:
`hitl worker examples.http_app.workflow:graph --store "$HITL_STORE"`.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from typing_extensions import TypedDict

from hitl_async import END, START, CompiledStateGraph, StateGraph, connect, interrupt

__all__ = [
    "DEFAULT_STORE",
    "GRAPH_NAME",
    "HARD_LIMIT",
    "Expense",
    "build",
    "graph",
    "store_from_env",
]

GRAPH_NAME = "expenses"  # also the run queue's name and the inbox filter
DEFAULT_STORE = "sqlite:///expenses.db"  # when $HITL_STORE is unset (relative to the cwd)
HARD_LIMIT = 10_000.0  # above this, an expense is refused without asking anyone


class Expense(TypedDict, total=False):
    """A thread's state: the claim, where it stands, the manager's answer, the payment."""

    amount: float
    who: str
    status: str  # checked | approved | rejected | paid
    reason: str
    decision: str
    payment: dict[str, Any]


async def check(state: Expense) -> dict[str, Any]:
    """Apply the policy: refuse outright what no manager may approve."""
    if state["amount"] > HARD_LIMIT:
        return {"status": "rejected", "reason": f"over the {HARD_LIMIT:.2f} limit"}
    return {"status": "checked"}


def after_check(state: Expense) -> Literal["approve", "__end__"]:
    return "approve" if state["status"] == "checked" else END


async def approve(state: Expense) -> dict[str, Any]:
    """Pause until a manager answers "yes" or "no" (the node reruns from here on resume)."""
    answer = interrupt(
        {
            "question": f"Approve {state['amount']:.2f} for {state['who']}?",
            "amount": state["amount"],
            "who": state["who"],
            "answers": ["yes", "no"],
        }
    )
    if answer == "yes":
        return {"status": "approved", "decision": "yes"}
    return {"status": "rejected", "decision": str(answer), "reason": "declined by the manager"}


def after_approve(state: Expense) -> Literal["pay", "__end__"]:
    return "pay" if state["status"] == "approved" else END


async def pay(state: Expense) -> dict[str, Any]:
    """Record the payment (a real app would call its payment provider here)."""
    payment = {
        "reference": f"pay-{uuid.uuid4().hex[:12]}",
        "amount": state["amount"],
        "to": state["who"],
        "paid_at": datetime.now(UTC).isoformat(),
    }
    return {"status": "paid", "payment": payment}


def build(store_url: str, **options: Any) -> CompiledStateGraph:
    """The approval graph with its threads in the store at `store_url` (driver `options`, e.g.
    `schema=` for PostgreSQL). The saver connects lazily: call `setup()`/`aclose()` on
    `graph.checkpointer` around its use."""
    builder = StateGraph(Expense)
    builder.add_node("check", check)
    builder.add_node("approve", approve)
    builder.add_node("pay", pay)
    builder.add_edge(START, "check")
    builder.add_conditional_edges("check", after_check)
    builder.add_conditional_edges("approve", after_approve)
    builder.add_edge("pay", END)
    return builder.compile(checkpointer=connect(store_url, **options), name=GRAPH_NAME)


def store_from_env() -> tuple[str, dict[str, Any]]:
    """The store URL (`$HITL_STORE`, default `sqlite:///expenses.db`) and driver options
    (`$HITL_STORE_SCHEMA` → `schema=`, PostgreSQL only)."""
    url = os.environ.get("HITL_STORE") or DEFAULT_STORE
    options: dict[str, Any] = {}
    schema = os.environ.get("HITL_STORE_SCHEMA")
    if schema:
        options["schema"] = schema
    return url, options


def graph() -> CompiledStateGraph:
    """The graph on the store named by the environment (see `store_from_env`)."""
    url, options = store_from_env()
    return build(url, **options)
