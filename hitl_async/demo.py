"""The demo: an approval workflow that pauses for a human, stored in a checkpoint store.

    hitl demo                               # asks at the terminal (answers "yes" without one)
    hitl demo --answer no
    hitl demo --store memory://
    python examples/demo.py --answer yes    # the same, from a checkout

The thread lives in the store, so a paused run can be resumed by another process that opens the
same store: run with `--stop-at-pause`, then `--resume-only --thread T --answer yes` in a second
process. Exit codes: 0 done (or paused with `--stop-at-pause`), 2 bad arguments, 3 the thread
does not exist, 4 the thread is not waiting for an answer.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import anyio
from typing_extensions import TypedDict

from hitl_async import END, START, Command, CompiledStateGraph, StateGraph, connect, interrupt
from hitl_async.cli._invocation import python_command, shown_path

__all__ = ["Approval", "build", "main", "run_demo"]

RESUME_HINT = "hitl demo --store {store} --thread {thread} --resume-only --answer yes"
"""How the demo tells the user to resume from another process (`{store}`, `{thread}` quoted)."""


def merge(left: dict[str, bool], right: dict[str, bool]) -> dict[str, bool]:
    """Reducer of `approvals`: later approvals are added to earlier ones."""
    return {**left, **right}


class Approval(TypedDict):
    action: str
    amount: float
    approvals: Annotated[dict[str, bool], merge]
    outcome: str


def manager(state: Approval) -> dict[str, object]:
    """Pause for the manager's yes/no."""
    answer = interrupt(
        {"stage": "manager", "question": f"Approve {state['action']} for ${state['amount']:.2f}?"}
    )
    return {"approvals": {"manager": answer == "yes"}}


def execute(state: Approval) -> dict[str, object]:
    """Act on the approvals."""
    verdict = "EXECUTED" if all(state["approvals"].values()) else "REJECTED"
    return {"outcome": f"{verdict}: {state['action']}"}


def builder() -> StateGraph:
    """The approval graph, not compiled."""
    graph = StateGraph(Approval)
    graph.add_node("manager", manager)
    graph.add_node("execute", execute)
    graph.add_edge(START, "manager")
    graph.add_edge("manager", "execute")
    graph.add_edge("execute", END)
    return graph


def build(store: str, **options: Any) -> CompiledStateGraph:
    """The approval graph, compiled with the checkpoint store at `store` (a URL)."""
    return builder().compile(checkpointer=connect(store, **options), name="approval-demo")


async def _ask() -> str:
    """The human's answer from the terminal, or "yes" when stdin is not one.

    `input()` runs in a daemon thread, so Ctrl-C at the prompt ends the program at once (the
    thread stays paused in the store) instead of waiting for a line that never comes.
    """
    if not sys.stdin.isatty():
        print("(stdin is not a terminal: answering 'yes'; pass --answer to choose)")
        return "yes"
    got: list[str] = []
    failed: list[BaseException] = []

    def read() -> None:
        try:
            got.append(input("Your answer [yes/no]: "))
        except BaseException as exc:  # EOF (Ctrl-D) ends the demo like Ctrl-C
            failed.append(exc)

    reader = threading.Thread(target=read, name="hitl-demo-prompt", daemon=True)
    reader.start()
    while reader.is_alive():
        await anyio.sleep(0.05)
    if failed:
        raise KeyboardInterrupt from failed[0]
    return got[0].strip()


async def run_demo(
    store: str,
    *,
    thread: str | None = None,
    answer: str | None = None,
    stop_at_pause: bool = False,
    resume_only: bool = False,
    options: Mapping[str, Any] | None = None,
    resume_hint: str = RESUME_HINT,
    ask: Callable[[], Awaitable[str]] = _ask,
) -> int:
    """Run the workflow on `store`: start, pause, get an answer, resume, print the outcome.

    Returns the exit code (see the module docstring). `resume_hint` is a format string with
    `{store}` and `{thread}` for the command that resumes the thread from another process.
    """
    if resume_only and not thread:
        print(
            "error: --resume-only needs --thread (the id printed by --stop-at-pause)",
            file=sys.stderr,
        )
        return 2
    graph = build(store, **dict(options or {}))
    saver = graph.checkpointer
    assert saver is not None
    try:
        thread = thread or f"demo-{uuid.uuid4().hex[:8]}"
        cfg = {"configurable": {"thread_id": thread}}
        if not resume_only:
            print(f"Starting thread {thread!r} on {store}")
            async for event in graph.astream({"action": "vendor-contract", "amount": 5000.0}, cfg):
                print("  event:", event)
        snapshot = await graph.aget_state(cfg)
        if not snapshot.interrupts:
            if snapshot.metadata is None:
                print(f"Thread {thread!r} does not exist in {store}.")
                return 3
            print(f"Thread {thread!r} is not waiting for anyone (next={snapshot.next}).")
            return 4
        pending = snapshot.interrupts[0]
        print(f"Paused at {snapshot.next}: {pending.value['question']} (interrupt id {pending.id})")
        hint = resume_hint.format(store=shlex.quote(store), thread=shlex.quote(thread))
        in_process = store.partition(":")[0].lower() == "memory"
        if stop_at_pause:
            if in_process:
                print("Nothing else can resume it: memory:// lives in this process only.")
                return 0
            print(f"Resume it from any process that shares the store:\n  {hint}")
            return 0
        if not in_process:
            print(f"(To answer from another process instead, leave this one and run: {hint})")
        if answer is None:
            try:
                answer = await ask()
            except (KeyboardInterrupt, anyio.get_cancelled_exc_class()):
                print(f"\nThread {thread!r} stays paused; resume it with: {hint}")
                raise
        async for event in graph.astream(Command(resume=answer), cfg):
            print("  event:", event)
        print("Outcome:", (await graph.aget_state(cfg)).values["outcome"])
        return 0
    finally:
        await saver.aclose()


def main(
    argv: list[str] | None = None,
    *,
    prog: str | None = None,
    default_store: str = "sqlite:///hitl-demo.db",
    resume_hint: str | None = None,
    script: str | None = None,
) -> int:
    """Command-line entry of the demo (argparse), for `python examples/demo.py` (`script` is
    that file) and `python -m hitl_async.demo`. The resume hint it prints names the running
    interpreter (e.g. `.venv/bin/python`), so it works as typed."""
    if resume_hint is None:
        invocation = (
            python_command(shown_path(script))
            if script is not None
            else python_command("-m", "hitl_async.demo")
        )
        resume_hint = invocation + " --store {store} --thread {thread} --resume-only --answer yes"
    parser = argparse.ArgumentParser(
        prog=prog, description="Approval workflow that pauses for a human."
    )
    parser.add_argument("--store", default=default_store, help="checkpoint store URL")
    parser.add_argument("--thread", default=None, help="thread id (default: a new one)")
    parser.add_argument("--answer", default=None, help="the human's answer (yes/no)")
    parser.add_argument("--stop-at-pause", action="store_true", help="exit once paused")
    parser.add_argument("--resume-only", action="store_true", help="only resume --thread")
    args = parser.parse_args(argv)

    hint = resume_hint

    async def go() -> int:
        return await run_demo(
            args.store,
            thread=args.thread,
            answer=args.answer,
            stop_at_pause=args.stop_at_pause,
            resume_only=args.resume_only,
            resume_hint=hint,
        )

    try:
        return anyio.run(go)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(prog="python -m hitl_async.demo"))
