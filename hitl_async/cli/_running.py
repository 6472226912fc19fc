"""`hitl demo`, `hitl run` and `hitl resume`: running a graph on a thread until it finishes or
pauses, and answering its interrupts. Strict as the library is: `run` on a thread paused on an
interrupt refuses (the pending question would be dropped) unless `--restart` says so, and every
refusal names the pending interrupts and the command that answers them."""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from hitl_async._input import is_interrupt_id
from hitl_async.cli._common import (
    DebugOpt,
    GraphArg,
    JsonOpt,
    StoreOpt,
    StoreOptionOpt,
    ThreadOpt,
    command_line,
    execute,
    thread_config,
)
from hitl_async.cli._errors import ConflictError, NotFoundError, UsageError
from hitl_async.cli._inspect import InterruptView, ThreadView
from hitl_async.cli._load import Store, load_graph, open_store, parse_json
from hitl_async.cli._render import compact, console, emit_json, print_event
from hitl_async.errors import (
    AmbiguousResumeError,
    NoPendingInterruptError,
    ResumeError,
    UnknownInterruptError,
)
from hitl_async.graph.compiled import CompiledStateGraph
from hitl_async.types import Command

__all__ = ["register"]

WaitOpt = Annotated[float, typer.Option(help="Seconds to wait for a busy thread before failing.")]


def _resume_command(spec: str, thread: str, st: Store, several: bool) -> str:
    by_id = "--id ID" if several else ""
    return command_line(
        "resume", shlex.quote(spec), "--thread", shlex.quote(thread), st.flags(), "--value JSON",
        by_id,
    )  # fmt: skip


def _run_command(spec: str, thread: str, st: Store, *extra: str) -> str:
    return command_line(
        "run", shlex.quote(spec), "--thread", shlex.quote(thread), st.flags(), *extra
    )


def _asks(interrupts: Sequence[InterruptView]) -> str:
    return "; ".join(f"{i.id} ({i.node} asks {compact(i.value, 120)})" for i in interrupts)


def _continue_hint(spec: str, thread: str) -> Callable[[Store], str]:
    """What to do once a store that failed mid-run is back: look, then continue the thread."""

    def then(st: Store) -> str:
        show = command_line("show", "--thread", shlex.quote(thread), st.flags())
        again = _run_command(spec, thread, st)
        return f"see where the thread stands with `{show}` and continue it with `{again}`"

    return then


async def _refuse_if_paused(graph: CompiledStateGraph, spec: str, thread: str, st: Store) -> None:
    """A run on a thread paused on an interrupt would drop the question: refuse, naming it."""
    view = ThreadView.from_snapshot(thread, await graph.aget_state(thread_config(thread)))
    pending = view.interrupts
    if not pending:
        return
    what = "an interrupt" if len(pending) == 1 else f"{len(pending)} interrupts"
    answer = _resume_command(spec, thread, st, len(pending) > 1)
    restart = _run_command(spec, thread, st, "--input JSON", "--restart")
    raise ConflictError(
        f"thread {thread!r} is paused on {what}: {_asks(pending)}. A new run would discard "
        f"the pending question. Answer it with `{answer}`, or start over with `{restart}` "
        "(discards the pending question)"
    )


async def _explain_resume_error(
    exc: ResumeError, graph: CompiledStateGraph, spec: str, thread: str, st: Store
) -> Exception:
    """A strict resume error in command-line terms (what to run instead)."""
    if isinstance(exc, NoPendingInterruptError) and not exc.exists:
        start = _run_command(spec, thread, st, "--input JSON")
        return NotFoundError(
            f"thread {thread!r} does not exist in {st.url}, so there is nothing to resume: "
            f"start it with `{start}` (or check --thread and --store)"
        )
    view = ThreadView.from_snapshot(thread, await graph.aget_state(thread_config(thread)))
    pending = view.interrupts
    if isinstance(exc, NoPendingInterruptError):
        if view.next:
            step = (
                f"it is stopped before {', '.join(view.next)}: continue it with "
                f"`{_run_command(spec, thread, st)}`"
            )
        else:
            again = _run_command(spec, thread, st, "--input JSON")
            step = f"it has finished: start another run with `{again}`"
        return ConflictError(f"thread {thread!r} has no pending interrupt; {step}")
    if isinstance(exc, AmbiguousResumeError):
        return ConflictError(
            f"thread {thread!r} has {len(pending)} pending interrupts, so one --value is "
            f"ambiguous: answer each by id with `{_resume_command(spec, thread, st, True)}`. "
            f"Pending: {_asks(pending)}"
        )
    if isinstance(exc, UnknownInterruptError):
        listed = _asks(pending) if pending else "none"
        return ConflictError(
            f"thread {thread!r}: interrupt id(s) {', '.join(exc.unknown)} are not pending "
            f"(unknown, or already answered). Pending: {listed}"
        )
    return exc


async def _drive(
    st: Store,
    spec: str,
    thread: str,
    payload: Any,
    *,
    json_out: bool,
    wait: float,
    guard: bool = False,
) -> int:
    out = console()
    async with open_store(st) as saver:
        graph = load_graph(spec, saver)
        cfg = thread_config(thread)
        if guard:
            await _refuse_if_paused(graph, spec, thread, st)
        events: list[Any] = []
        try:
            async for event in graph.astream(payload, cfg, wait=wait):
                events.append(event)
                if not json_out:
                    print_event(out, event)
        except ResumeError as exc:
            raise await _explain_resume_error(exc, graph, spec, thread, st) from exc
        view = ThreadView.from_snapshot(thread, await graph.aget_state(cfg))
    if json_out:
        emit_json({**view.to_json(), "events": events})
        return 0
    if view.status == "paused":
        for i in view.interrupts:
            out.print(f"paused: {i.node} asks {compact(i.value, 300)} (interrupt {i.id})")
        several = len(view.interrupts) > 1
        out.print(f"answer with: {_resume_command(spec, thread, st, several)}", soft_wrap=True)
    elif view.status == "done":
        out.print(f"done: {compact(view.values, 500)}")
    else:
        out.print(f"{view.status}: next {', '.join(view.next)}; {compact(view.values, 500)}")
    return 0


def demo(
    ctx: typer.Context,
    thread: Annotated[
        str | None, typer.Option("--thread", "-t", help="Thread id [default: a new one].")
    ] = None,
    answer: Annotated[
        str | None,
        typer.Option(help="The human's answer (yes/no); asked at the terminal when omitted."),
    ] = None,
    stop_at_pause: Annotated[
        bool, typer.Option("--stop-at-pause", help="Exit once paused; print how to resume.")
    ] = False,
    resume_only: Annotated[
        bool, typer.Option("--resume-only", help="Only resume --thread (paused earlier).")
    ] = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The approval workflow end to end: pause, ask, resume, outcome."""
    from hitl_async.demo import run_demo

    async def body(st: Store) -> int:
        words = command_line("demo", st.flags(), "--thread")
        hint = words.replace("{", "{{").replace("}", "}}") + " {thread} --resume-only --answer yes"
        return await run_demo(
            st.url,
            thread=thread,
            answer=answer,
            stop_at_pause=stop_at_pause,
            resume_only=resume_only,
            options=st.options,
            resume_hint=hint,
        )

    execute(ctx, store, store_option, debug, body)


def run(
    ctx: typer.Context,
    graph: GraphArg,
    thread: Annotated[
        str | None, typer.Option("--thread", "-t", help="Thread id [default: a new one].")
    ] = None,
    input: Annotated[
        str | None,
        typer.Option(
            "--input", metavar="JSON", help="The run's input; omit to continue the thread."
        ),
    ] = None,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Start a thread paused on an interrupt over from --input, discarding the "
            "pending question (without it, such a run is refused).",
        ),
    ] = False,
    wait: WaitOpt = 0.0,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run a graph on a thread until it finishes or pauses (refuses a thread paused on an
    interrupt: answer it with `hitl resume`, or pass --restart)."""
    chosen = thread or f"run-{uuid.uuid4().hex[:8]}"

    async def body(st: Store) -> int:
        payload = parse_json(input, "--input")
        if restart and input is None:
            raise UsageError("--restart starts the thread over from new input: pass --input JSON")
        return await _drive(
            st, graph, chosen, payload, json_out=json_out, wait=wait, guard=not restart
        )

    execute(ctx, store, store_option, debug, body, then=_continue_hint(graph, chosen))


def resume(
    ctx: typer.Context,
    graph: GraphArg,
    thread: ThreadOpt,
    value: Annotated[str, typer.Option("--value", metavar="JSON", help="The answer (JSON).")],
    interrupt_id: Annotated[
        str | None,
        typer.Option("--id", metavar="ID", help="Answer this interrupt (when several wait)."),
    ] = None,
    wait: WaitOpt = 0.0,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Answer a paused thread's interrupt and run on (strict: errors change nothing)."""

    async def body(st: Store) -> int:
        answer = parse_json(value, "--value")
        command: Command[str]
        if interrupt_id is None:
            command = Command(resume=answer)
        else:
            # A resume map is told from a dict answer by its keys' shape: check it here, so a
            # mistyped id is an error rather than a dict sent as the answer.
            key = interrupt_id.strip().lower()
            if not is_interrupt_id(key):
                raise UsageError(
                    f"--id expects an interrupt id (32 hex digits, as `hitl inbox` shows), "
                    f"got {interrupt_id!r}"
                )
            command = Command(resume={key: answer})
        return await _drive(st, graph, thread, command, json_out=json_out, wait=wait)

    execute(ctx, store, store_option, debug, body, then=_continue_hint(graph, thread))


def register(app: typer.Typer) -> None:
    """Add `demo`, `run` and `resume` to the `hitl` command."""
    app.command()(demo)
    app.command()(run)
    app.command()(resume)
