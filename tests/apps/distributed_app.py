"""Roles for the multi-process tests: `python -m apps.distributed_app ROLE ...` (with `tests/` on
PYTHONPATH). Side effects are appended, one line each, to the file in $HITL_EFFECTS, so a test
can count how often each really happened across processes."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Annotated, Any

import anyio
from typing_extensions import TypedDict

from hitl_async import END, START, Command, StateGraph, Worker, connect, interrupt


def effect(name: str) -> None:
    """Record a side effect durably (O_APPEND: safe from several processes)."""
    fd = os.open(os.environ["HITL_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name}\n".encode())
    finally:
        os.close(fd)


class Approval(TypedDict, total=False):
    request: str
    answer: str
    done: str


async def ask(state: Approval) -> dict[str, Any]:
    timeout = float(os.environ.get("HITL_DEADLINE", "0")) or None
    answer = interrupt({"approve": state["request"]}, timeout=timeout, on_timeout="auto-no")
    return {"answer": answer}


async def act(state: Approval) -> dict[str, Any]:
    effect(f"act:{state['request']}:{state['answer']}")
    return {"done": f"{state['request']}={state['answer']}"}


def merge(a: list[str], b: list[str]) -> list[str]:
    return a + b


async def fast(state: Any) -> dict[str, Any]:
    effect("fast")
    return {"log": ["fast"]}


async def slow(state: Any) -> dict[str, Any]:
    await anyio.sleep(float(os.environ.get("HITL_SLOW", "0")))
    effect("slow")
    return {"log": ["slow"]}


def approval_graph(store: str, options: dict[str, Any]) -> Any:
    b = StateGraph(Approval)
    b.add_node("ask", ask)
    b.add_node("act", act)
    b.add_edge(START, "ask")
    b.add_edge("ask", "act")
    b.add_edge("act", END)
    return b.compile(checkpointer=connect(store, **options), name="approval", lease_ttl=2.0)


class PairState(TypedDict, total=False):
    log: Annotated[list[str], merge]


def pair_graph(store: str, options: dict[str, Any]) -> Any:
    b = StateGraph(PairState)
    b.add_node("fast", fast)
    b.add_node("slow", slow)
    b.add_edge(START, "fast")
    b.add_edge(START, "slow")
    b.add_edge(["fast", "slow"], END)
    return b.compile(checkpointer=connect(store, **options), name="pair", lease_ttl=1.0)


GRAPHS = {"approval": approval_graph, "pair": pair_graph}


async def main(args: argparse.Namespace) -> int:
    options = json.loads(args.options)
    graph = GRAPHS[args.graph](args.store, options)
    cfg = {"configurable": {"thread_id": args.thread}}
    if args.role == "resume":
        if args.at:
            await anyio.sleep(max(0.0, args.at - time.time()))
        try:
            out = await graph.ainvoke(Command(resume=args.answer), cfg)
            print(json.dumps({"ok": True, "done": out.get("done")}))
        except Exception as exc:
            print(json.dumps({"ok": False, "error": type(exc).__name__}))
    elif args.role == "submit":
        payload: Any = Command(resume=args.answer) if args.answer else {"request": args.thread}
        handle = await graph.asubmit(payload, cfg)
        print(json.dumps({"request_id": handle.id}))
    elif args.role == "worker":
        worker = Worker(graph, concurrency=args.concurrency, claim_ttl=1.0, poll=0.2, grace=5)
        print(json.dumps({"worker": worker.owner}), flush=True)

        async def stop_on_sigterm() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    worker.stop()
                    return

        with anyio.move_on_after(args.seconds):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stop_on_sigterm)
                await worker.run(max_requests=args.max_requests)
                tg.cancel_scope.cancel()
    await graph.checkpointer.aclose()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["resume", "submit", "worker"])
    parser.add_argument("--graph", default="approval", choices=list(GRAPHS))
    parser.add_argument("--store", required=True)
    parser.add_argument("--options", default="{}")
    parser.add_argument("--thread", default="t")
    parser.add_argument("--answer", default="")
    parser.add_argument("--at", type=float, default=0.0, help="start at this epoch time")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=None)
    sys.exit(anyio.run(main, parser.parse_args()))
