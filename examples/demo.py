"""The demo: an approval workflow that pauses for a human, stored in an embedded SQLite file.

    python examples/demo.py                 # asks at the terminal (or answers "yes" without one)
    python examples/demo.py --answer no
    python examples/demo.py --store memory://

The thread lives in the store, so a paused run can be resumed by another process that opens the
same file: run with `--stop-at-pause`, then `--resume-only --answer yes` in a second process.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Annotated

from typing_extensions import TypedDict

from hitl_async import END, START, Command, CompiledStateGraph, StateGraph, connect, interrupt


def merge(left: dict[str, bool], right: dict[str, bool]) -> dict[str, bool]:
    return {**left, **right}


class Approval(TypedDict):
    action: str
    amount: float
    approvals: Annotated[dict[str, bool], merge]
    outcome: str


def manager(state: Approval) -> dict[str, object]:
    answer = interrupt(
        {"stage": "manager", "question": f"Approve {state['action']} for ${state['amount']:.2f}?"}
    )
    return {"approvals": {"manager": answer == "yes"}}


def execute(state: Approval) -> dict[str, object]:
    verdict = "EXECUTED" if all(state["approvals"].values()) else "REJECTED"
    return {"outcome": f"{verdict}: {state['action']}"}


def build(store: str) -> CompiledStateGraph:
    builder = StateGraph(Approval)
    builder.add_node("manager", manager)
    builder.add_node("execute", execute)
    builder.add_edge(START, "manager")
    builder.add_edge("manager", "execute")
    builder.add_edge("execute", END)
    return builder.compile(checkpointer=connect(store))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Approval workflow that pauses for a human.")
    parser.add_argument("--store", default="sqlite:///hitl-demo.db", help="checkpoint store URL")
    parser.add_argument("--thread", default=None, help="thread id (default: a new one)")
    parser.add_argument("--answer", default=None, help="the human's answer (yes/no)")
    parser.add_argument("--stop-at-pause", action="store_true", help="exit once paused")
    parser.add_argument("--resume-only", action="store_true", help="only resume --thread")
    args = parser.parse_args(argv)
    graph = build(args.store)
    thread = args.thread or f"demo-{uuid.uuid4().hex[:8]}"
    cfg = {"configurable": {"thread_id": thread}}

    if not args.resume_only:
        print(f"Starting thread {thread!r} on {args.store}")
        for event in graph.stream({"action": "vendor-contract", "amount": 5000.0}, cfg):
            print("  event:", event)
    snapshot = graph.get_state(cfg)
    if not snapshot.interrupts:
        print(f"Thread {thread!r} is not waiting for anyone (next={snapshot.next}).")
        return 1
    pending = snapshot.interrupts[0]
    print(f"Paused at {snapshot.next}: {pending.value['question']} (interrupt id {pending.id})")
    if args.stop_at_pause:
        print(
            "Resume it from any process that shares the store:\n"
            f"  python examples/demo.py --store {args.store} --thread {thread} --resume-only "
            "--answer yes"
        )
        return 0
    answer = args.answer
    if answer is None:
        answer = input("Your answer [yes/no]: ").strip() if sys.stdin.isatty() else "yes"
    for event in graph.stream(Command(resume=answer), cfg):
        print("  event:", event)
    print("Outcome:", graph.get_state(cfg).values["outcome"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
