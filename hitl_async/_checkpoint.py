"""The engine's checkpoint model: what a superstep boundary holds, and its byte form for drivers.

A checkpoint holds the state channels (each with a version: the id of the checkpoint that last
changed it, so unchanged channels are never rewritten and forks never collide), the tasks of the
next superstep, and the pending writes of tasks of that step that already finished, paused or
failed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hitl_async.checkpoint.base import BlobRecord, CheckpointRecord, LoadedCheckpoint, WriteRecord
from hitl_async.constants import INTERRUPT, NEXT, RESUME, SPECIAL_WRITE_IDX
from hitl_async.errors import CheckpointCorruptError, SerializationError
from hitl_async.serde import Serializer
from hitl_async.types import Interrupt, Send, TimeoutPolicy

__all__ = [
    "NULL_TASK",
    "EngineCheckpoint",
    "TaskSpec",
    "check_write_shape",
    "flat_writes",
    "new_checkpoint_id",
    "now_iso",
    "task_id",
    "tracked_arg",
    "write_records",
]

NULL_TASK = "null"
"""Task id of writes that come from the run's input (`Command.update`/`goto`), not from a node."""

_HEADER_VERSION = 1


@dataclass(slots=True)
class TaskSpec:
    """A task of the next superstep: a node triggered by edges, or a push with its own input."""

    node: str
    push: bool = False
    arg: Any = None
    timeout: TimeoutPolicy | None = None
    """A `Send`'s own timeout (in place of its node's)."""


@dataclass(slots=True)
class EngineCheckpoint:
    """A decoded checkpoint: values, versions, next tasks and pending writes."""

    checkpoint_id: str | None
    parent_id: str | None
    created_at: str | None
    step: int
    metadata: dict[str, Any]
    values: dict[str, Any]
    versions: dict[str, str]
    tasks: list[TaskSpec]
    writes: dict[str, list[tuple[int, str, Any]]] = field(default_factory=dict)
    made_by: list[Any] = field(default_factory=list)
    """State writes of the tasks of the parent's step that made this checkpoint, for those not
    stored as the parent's pending writes: what history shows as their `PregelTask.result`
    (LangGraph keeps every task's writes), and a resumed task's answers (a `__resume__` write
    of `(interrupt id, answer)` pairs, which results leave out). Flat, as stored (cheap to
    build and pack): task index, number of writes, then key and value of each;
    `made_by_tasks()` reads it. Empty for a loop step of one task that wrote keys without
    reducer, once each: the channels this checkpoint changed hold what it wrote. `[-1]`: no
    results (the parent was skipped)."""
    writer: list[str] | None = None
    """The edge-triggered nodes (or START) of the last step that ran any, as of this checkpoint
    (LangGraph reads it from its checkpoint's `versions_seen`): `update_state()` without
    `as_node` is applied as this writer. None: not kept (before any step ran, or a checkpoint
    of an older hitl-async, whose stored chain tells it)."""

    def made_by_tasks(self) -> dict[int, list[tuple[str, Any]]]:
        """`made_by` as the writes of each task, by task index."""
        out: dict[int, list[tuple[str, Any]]] = {}
        flat, i = self.made_by, 0
        while i + 1 < len(flat):
            index, n = flat[i], flat[i + 1]
            out[index] = [(flat[j], flat[j + 1]) for j in range(i + 2, i + 2 + 2 * n, 2)]
            i += 2 + 2 * n
        return out

    @classmethod
    def empty(cls) -> EngineCheckpoint:
        return cls(None, None, None, -2, {}, {}, {}, [])

    # -- byte form -------------------------------------------------------------------------------

    def record(
        self,
        thread_id: str,
        checkpoint_ns: str,
        serde: Serializer,
        untracked: frozenset[str] = frozenset(),
    ) -> CheckpointRecord:
        """The stored form; keys in `untracked` (`UntrackedValue`s) are left out of the tasks'
        `Send` arguments and of the tasks' writes kept for history."""
        assert self.checkpoint_id is not None and self.created_at is not None
        parts: list[Any] = [
            _HEADER_VERSION,
            self.step,
            [_task_row(t, untracked) for t in self.tasks],
        ]
        made_by = self.made_by
        if untracked and made_by and made_by[0] != -1:
            made_by = flat_writes(
                (i, [(c, v) for c, v in w if c not in untracked])
                for i, w in self.made_by_tasks().items()
            )
        if made_by or self.writer is not None:  # optional parts: older headers load
            parts.append(made_by)
        if self.writer is not None:
            parts.append(self.writer)
        try:
            header = serde.dumps(parts, channel="__tasks__")
        except SerializationError:
            for t in self.tasks:  # name the task whose input cannot be stored
                label = "the graph's input" if t.node == "__start__" else f"{t.node!r}'s input"
                serde.dumps(t.arg, channel=label)
            raise
        return CheckpointRecord(
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=self.checkpoint_id,
            parent_id=self.parent_id,
            created_at=self.created_at,
            channel_versions=dict(self.versions),
            header=header,
            metadata=self.metadata,
        )

    def blobs(self, channels: Sequence[str] | set[str], serde: Serializer) -> list[BlobRecord]:
        out = []
        for ch in channels:
            if ch in self.values and ch in self.versions:  # (an UntrackedValue has none)
                out.append(
                    BlobRecord(ch, self.versions[ch], serde.dumps(self.values[ch], channel=ch))
                )
        return out

    @classmethod
    def decode(cls, loaded: LoadedCheckpoint, serde: Serializer) -> EngineCheckpoint:
        """Decode a stored checkpoint. Any failure (damaged bytes, another format, serializer or
        key) is a CheckpointCorruptError naming the thread, the checkpoint and the part."""
        rec = loaded.record

        def corrupt(where: str, exc: Exception) -> CheckpointCorruptError:
            if isinstance(exc, SerializationError):
                detail = str(exc)
            else:
                detail = f"malformed {where}: {type(exc).__name__}: {exc}"
            return CheckpointCorruptError(rec.thread_id, rec.checkpoint_id, where, detail)

        try:
            version, step, tasks, *rest = serde.loads(rec.header)
            if version != _HEADER_VERSION:
                raise CheckpointCorruptError(
                    rec.thread_id,
                    rec.checkpoint_id,
                    "header",
                    f"It has header format {version!r}; this hitl-async reads format "
                    f"{_HEADER_VERSION}.",
                )
            if type(step) is not int or type(tasks) is not list:
                raise TypeError("expected [version, step, tasks]")
            specs = [TaskSpec(*task) for task in tasks]  # (node, push, arg[, timeout])
            made_by = rest[0] if rest else []
            if type(made_by) is not list:
                raise TypeError("expected a list of task writes")
            writer = rest[1] if len(rest) > 1 else None
            if writer is not None and type(writer) is not list:
                raise TypeError("expected a list of node names")
        except CheckpointCorruptError:
            raise
        except Exception as exc:
            raise corrupt("header", exc) from exc
        values: dict[str, Any] = {}
        for ch, data in loaded.blobs.items():
            try:
                values[ch] = serde.loads(data)
            except Exception as exc:
                raise corrupt(f"channel {ch!r}", exc) from exc
        writes: dict[str, list[tuple[int, str, Any]]] = {}
        for w in loaded.writes:
            try:
                value = serde.loads(w.data)
                check_write_shape(w.channel, value)
            except Exception as exc:
                raise corrupt(f"write of task {w.task_id!r} to channel {w.channel!r}", exc) from exc
            writes.setdefault(w.task_id, []).append((w.idx, w.channel, value))
        for rows in writes.values():
            rows.sort(key=lambda r: r[0])
        return cls(
            checkpoint_id=rec.checkpoint_id,
            parent_id=rec.parent_id,
            created_at=rec.created_at,
            step=step,
            metadata=dict(rec.metadata),
            values=values,
            versions=dict(rec.channel_versions),
            tasks=specs,
            writes=writes,
            made_by=made_by,
            writer=writer,
        )


def _task_row(t: TaskSpec, untracked: frozenset[str]) -> list[Any]:
    """A task as its checkpoint's header stores it: node, push, arg (a push's without its
    `untracked` keys), and a `Send`'s own timeout when it has one (older headers, and tasks
    without one, have three items)."""
    arg = tracked_arg(t.arg, untracked) if t.push else t.arg
    if t.timeout is None:
        return [t.node, t.push, arg]
    return [t.node, t.push, arg, t.timeout]


def check_write_shape(channel: str, value: Any) -> None:
    """Raise TypeError when a stored write to one of the engine's own channels does not have the
    shape the engine writes there: a value of another type, well formed and correctly checksummed
    (put there by hand), would otherwise fail far from the load, or be taken as something else."""
    if channel == INTERRUPT:
        ok = type(value) is list and all(isinstance(i, (Interrupt, str)) for i in value)
    elif channel == RESUME:
        ok = type(value) is list and all(
            type(pair) in (list, tuple) and len(pair) == 2 and type(pair[0]) is str
            for pair in value
        )
    else:
        return
    if not ok:
        raise TypeError(f"a write to {channel} holds {type(value).__name__}, not what it stores")


def flat_writes(entries: Iterable[tuple[int, Sequence[tuple[str, Any]]]]) -> list[Any]:
    """Tasks' writes in `EngineCheckpoint.made_by`'s flat form."""
    flat: list[Any] = []
    for index, writes in entries:
        flat += (index, len(writes))
        for write in writes:
            flat += write
    return flat


def tracked_arg(arg: Any, untracked: frozenset[str]) -> Any:
    """A `Send` argument as stored: a dict without its `untracked` keys (`UntrackedValue`s are
    never stored, as LangGraph strips them from a Send's top-level keys); else `arg` itself."""
    if untracked and isinstance(arg, dict) and not untracked.isdisjoint(arg):
        return {k: v for k, v in arg.items() if k not in untracked}
    return arg


def write_records(
    task: str,
    writes: Sequence[tuple[str, Any]],
    serde: Serializer,
    path: str = "",
    untracked: frozenset[str] = frozenset(),
) -> list[WriteRecord]:
    """Byte form of a task's writes; special channels get fixed indexes so they replace. Writes
    to `untracked` keys are left out and `Send` arguments stored without them."""
    out = []
    n = 0
    for channel, value in writes:
        if untracked:
            if channel in untracked:
                continue
            if channel == NEXT and isinstance(value, Send):
                value = dataclasses.replace(value, arg=tracked_arg(value.arg, untracked))
        idx = SPECIAL_WRITE_IDX.get(channel)
        if idx is None:
            idx = n
            n += 1
        out.append(WriteRecord(task, idx, channel, serde.dumps(value, channel=channel), path))
    return out


def task_id(checkpoint_id: str | None, checkpoint_ns: str, index: int, node: str) -> str:
    """Deterministic id of the `index`-th task of the step that runs from a checkpoint."""
    key = f"{checkpoint_id}\x00{checkpoint_ns}\x00{index}\x00{node}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


_second: list[Any] = [-1, ""]


def now_iso() -> str:
    """Now, UTC ISO-8601 with microseconds; the date part is formatted once per second."""
    ns = time.time_ns()
    sec, micros = divmod(ns // 1000, 1_000_000)
    if sec != _second[0]:
        _second[0] = sec
        _second[1] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second[1]}.{micros:06d}+00:00"


_id_lock = threading.Lock()
_random = random.Random()  # ids need uniqueness, not secrecy
_last: tuple[int, int] = (0, 0)
_last_id = ""


def _new_process() -> None:
    """A forked child draws other random bits than its parent (and has no lock held)."""
    global _id_lock
    _id_lock = threading.Lock()
    _random.seed()


os.register_at_fork(after_in_child=_new_process)


def _uuid7(ms: int, seq: int) -> str:
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | _random.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_checkpoint_id(after: str | None = None) -> str:
    """A UUIDv7-shaped, time-ordered id, strictly greater (as text) than `after` and than every
    id this process made before, whatever the clock does."""
    global _last, _last_id
    with _id_lock:
        ms, seq = time.time_ns() // 1_000_000, 0
        last_ms, last_seq = _last
        # Ids of one format order as text as they do by (ms, seq): parse only a later one.
        if after is not None and after > _last_id:
            try:
                parsed = uuid.UUID(after).int
                a_ms, a_seq = parsed >> 80, (parsed >> 64) & 0xFFF
                if (a_ms, a_seq) > (last_ms, last_seq):
                    last_ms, last_seq = a_ms, a_seq
            except ValueError:
                pass
        if (ms, seq) <= (last_ms, last_seq):
            ms, seq = last_ms, last_seq + 1
            if seq > 0xFFF:
                ms, seq = ms + 1, 0
        _last = (ms, seq)
        _last_id = _uuid7(ms, seq)
        return _last_id
