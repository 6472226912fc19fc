"""What a run starts with, applied to the loaded thread: new input (an input checkpoint), a
`Command` (answers to interrupts, an update, a goto), or None (continue, or replay and fork
from an older checkpoint). Every strict resume error is raised before anything is written."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from hitl_async._checkpoint import NULL_TASK, TaskSpec, write_records
from hitl_async._payloads import emit_checkpoint
from hitl_async._schema import update_as_items
from hitl_async.constants import END, NEXT, START
from hitl_async.errors import (
    AmbiguousResumeError,
    EmptyInputError,
    InvalidUpdateError,
    NoPendingInterruptError,
    UnknownInterruptError,
)
from hitl_async.types import Command, Send

if TYPE_CHECKING:
    from hitl_async._run import Run

__all__ = ["ReplayBound", "apply_input", "is_interrupt_id"]

_ID = re.compile(r"[0-9a-f]{32}")


class ReplayBound:
    """A replay's bound for subgraphs that keep state (`checkpointer=True`): the first call of
    each during the replaying run starts from its last checkpoint made before the replayed
    parent checkpoint (later calls, e.g. in a loop, from its newest), as LangGraph does."""

    __slots__ = ("checkpoint_id", "visited")

    def __init__(self, checkpoint_id: str) -> None:
        self.checkpoint_id = checkpoint_id
        self.visited: set[str] = set()

    def first_visit(self, ns: str) -> bool:
        """Whether `ns` is called for the first time in this run (and note it)."""
        if ns in self.visited:
            return False
        self.visited.add(ns)
        return True


def is_interrupt_id(key: Any) -> bool:
    """Whether `key` has the shape of an interrupt id (32 lowercase hex digits)."""
    return isinstance(key, str) and _ID.fullmatch(key) is not None


async def apply_input(run: Run, input: Any) -> None:
    """Apply the run's input to the loaded thread: new input, a Command, or None."""
    if isinstance(input, Command):
        await _command(run, input)
        run.skip_before = True
    elif input is None:
        if not run.exists:
            raise EmptyInputError(
                f"thread {run.thread_id!r} has no checkpoint to continue from: start it with "
                "an input (a dict of state values)"
            )
        if run.at is not None and run.parent is None:
            _bound_replay(run)
        if run.saver is not None and run.head != run.cp.checkpoint_id:
            _fork(run)
        else:
            emit_checkpoint(run)  # the checkpoint the run continues from, as LangGraph
            run.rerun_waiting = True
        run.skip_before = True
        if "values" in run.modes:
            run.emit("values", run.stream_values())
    else:
        await _input(run, input)


def _bound_replay(run: Run) -> None:
    """Continuing from a checkpoint named in the config is a replay, as in LangGraph: subgraphs
    that keep state start from what they had then (an edit's checkpoint, made after them, is
    bounded by its parent)."""
    bound = str(run.cp.checkpoint_id)
    if run.cp.metadata.get("source") in ("update", "fork") and run.cp.parent_id:
        bound = run.cp.parent_id
    run.replay = ReplayBound(bound)


def _fork(run: Run) -> None:
    """Replaying a past checkpoint: continue from a copy of it (metadata source "fork", its
    child), as LangGraph does, so the run neither reuses that checkpoint's pending writes (a
    human's earlier answers) nor writes beside them; the copy becomes the thread's head."""
    specs = [t.spec for t in run.tasks]
    run.cp.writes = {}
    run.new_checkpoint("fork", run.cp.step + 1, specs)
    run.prepare_tasks()
    emit_checkpoint(run)


async def _input(run: Run, value: Any) -> None:
    """New input: an input checkpoint whose only task applies it (pending tasks are dropped)."""
    entry = getattr(run.graph, "entry_name", None)
    if entry is None and not isinstance(value, dict) and run.graph.builder.schema.kind != "root":
        # an input that is no update at all is refused before the input checkpoint is written
        # (LangGraph writes it, then fails: the thread then waits to apply the bad input again)
        try:
            update_as_items(value, source="input")
        except InvalidUpdateError as exc:
            where = "" if run.thread_id is None else f"thread {run.thread_id!r}: "
            raise InvalidUpdateError(f"{where}{exc}") from None
    step = run.cp.step + 1 if run.exists else -1
    run.cp.writes = {}
    specs = [TaskSpec(START, True, value)] if entry is None else _enter(run, value, entry)
    run.new_checkpoint("input", step, specs)
    run.prepare_tasks()
    emit_checkpoint(run)
    if run.durability == "sync":
        await run.outbox.save()
    elif run.durability == "async":
        run.outbox.stage()


def _enter(run: Run, value: Any, entry: str) -> list[TaskSpec]:
    """An `@entrypoint`'s input, written at once: its input checkpoint's next task is the
    entrypoint itself (no `__start__` step), so its steps and history are LangGraph's."""
    values = dict(run.cp.values)
    items = run.graph.builder.schema.items(value, source="input")
    changed, specs = run.plan.step(values, [(START, [*items, (NEXT, entry)])])
    run.cp.values = values
    run.cp.versions = dict(run.cp.versions)
    run.dirty |= changed
    return specs


def _answer(run: Run, thread: str, resume: Any) -> None:
    """Record the answers of `Command(resume=...)` on the tasks that asked."""
    if run.saver is None or not run.exists:
        raise NoPendingInterruptError(thread, exists=False)
    pending = run.pending()
    by_id_map = isinstance(resume, dict) and resume and all(is_interrupt_id(k) for k in resume)
    if not pending:
        if not any(not t.done for t in run.tasks):
            raise NoPendingInterruptError(thread, exists=True)
        if by_id_map:  # answers to interrupts that are not pending: strict, as ever
            raise UnknownInterruptError(thread, list(resume), [])
        return  # paused at an interrupt_before/after breakpoint: continue, as LangGraph does
    by_id = {intr.id: t for t, intr in pending}
    if by_id_map:
        unknown = [k for k in resume if k not in by_id]
        if unknown:
            raise UnknownInterruptError(thread, unknown, [i for _, i in pending])
        answers = dict(resume)
    else:
        if len(pending) > 1:
            raise AmbiguousResumeError(thread, [i for _, i in pending])
        answers = {pending[0][1].id: resume}
    for iid, value in answers.items():
        by_id[iid].answers[iid] = value


async def _command(run: Run, cmd: Command[Any]) -> None:
    if cmd.graph == Command.PARENT:
        raise InvalidUpdateError("Command(graph=Command.PARENT) cannot be a run's input")
    thread = str(run.thread_id)
    loaded = {t.id: t.pending for t in run.tasks}  # as the checkpoint stood, for its event
    if cmd.resume is not None:
        _answer(run, thread, cmd.resume)
    nodes = run.graph.builder.nodes
    try:
        targets = cmd.goto_targets()
    except InvalidUpdateError as exc:
        raise InvalidUpdateError(f"thread {thread!r}: {exc}") from None
    for target in targets:
        node = target.node if isinstance(target, Send) else target
        if node != END and node not in nodes:
            raise InvalidUpdateError(
                f"thread {thread!r}: Command(goto={node!r}) names an unknown node; nodes are "
                f"{sorted(nodes)}"
            )
    items = run.graph.builder.schema.items(cmd.update, source="Command(update=...)")
    has_pending = any(not t.done for t in run.tasks)
    if not has_pending and (items or targets or not run.exists):
        # A finished or new thread: the command is this run's input.
        await _input(run, cmd)
        return
    emit_checkpoint(run, loaded)  # the checkpoint the run continues from, as LangGraph
    null_writes = items + [(NEXT, t) for t in targets if t != END]
    records = []
    # The answers themselves are stored with the outcome of their task (done, paused again),
    # never before: a step that fails leaves the thread exactly as it was, still asking.
    if null_writes:
        rows = run.cp.writes.setdefault(NULL_TASK, [])
        rows.extend((len(rows) + i, c, v) for i, (c, v) in enumerate(null_writes))
        records += write_records(
            NULL_TASK, [(c, v) for _, c, v in rows], run.serde, untracked=run.plan.untracked
        )
        run.dirty |= run.plan.apply(run.cp.values, items, source="Command(update=...)")
        answers = {t.id: t.answers for t in run.tasks}
        run.prepare_tasks()
        for t in run.tasks:
            t.answers = answers.get(t.id, t.answers)
    if records and run.saver is not None:
        if run.unsaved:
            await run.outbox.save()
        await run.outbox.put(records)
    if "values" in run.modes:
        run.emit("values", run.stream_values())
