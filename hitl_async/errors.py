"""Exception classes raised by hitl-async, all importable from `hitl_async`.

The resume errors are stricter than LangGraph: where LangGraph silently ignores a bad resume, these
are raised before anything is written, so the thread is exactly as it was.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from hitl_async.types import Interrupt

__all__ = [
    "AmbiguousResumeError",
    "CheckpointConflictError",
    "CheckpointCorruptError",
    "CheckpointerRequiredError",
    "CorruptRecordError",
    "DecryptionError",
    "DriverNotFoundError",
    "EmptyChannelError",
    "EmptyInputError",
    "ErrorCode",
    "GeneratorNotSupportedError",
    "GraphBubbleUp",
    "GraphDrained",
    "GraphInterrupt",
    "GraphRecursionError",
    "GraphValidationError",
    "HitlError",
    "InvalidCheckpointerError",
    "InvalidConfigError",
    "InvalidThreadIdError",
    "InvalidUpdateError",
    "LeaseLostError",
    "MissingCapabilityError",
    "NoParentGraphError",
    "NoPendingInterruptError",
    "NodeCancelledError",
    "NodeError",
    "NodeInterrupt",
    "NodeTimeoutError",
    "ParentCommand",
    "ResumeError",
    "SerializationError",
    "StepTimeoutError",
    "StoreLostError",
    "StoreUnavailableError",
    "TaskNotFound",
    "ThreadBusyError",
    "UnknownInterruptError",
]


class ErrorCode(Enum):
    """LangGraph's troubleshooting codes (`langgraph.errors.ErrorCode`); `create_error_message`
    appends the link to LangGraph's page for one to a message."""

    GRAPH_RECURSION_LIMIT = "GRAPH_RECURSION_LIMIT"
    INVALID_CONCURRENT_GRAPH_UPDATE = "INVALID_CONCURRENT_GRAPH_UPDATE"
    INVALID_GRAPH_NODE_RETURN_VALUE = "INVALID_GRAPH_NODE_RETURN_VALUE"
    MULTIPLE_SUBGRAPHS = "MULTIPLE_SUBGRAPHS"
    INVALID_CHAT_HISTORY = "INVALID_CHAT_HISTORY"


def create_error_message(*, message: str, error_code: ErrorCode) -> str:
    """`message` followed by the address of LangGraph's troubleshooting page for `error_code`,
    as LangGraph words its errors."""
    return (
        f"{message}\nFor troubleshooting, visit: "
        f"https://docs.langchain.com/oss/python/langgraph/errors/{error_code.value}"
    )


class HitlError(Exception):
    """Base class of every error hitl-async raises on purpose."""


class EmptyChannelError(Exception):
    """Reading a channel object that holds no value (`LastValue(int).get()` before any
    `update()`), as LangGraph's; the engine itself never raises it."""


class TaskNotFound(Exception):
    """LangGraph's error of a distributed executor that cannot find a task; hitl-async never
    raises it (the name is here for code that catches it)."""


class GraphValidationError(HitlError, ValueError):
    """The graph is malformed; raised by the builder and `compile()`, naming the bad part."""


class InvalidCheckpointerError(GraphValidationError, TypeError):
    """`compile(checkpointer=...)` got something that is not a saver (also a `TypeError`, which
    LangGraph raises there)."""


class InvalidUpdateError(HitlError, ValueError):
    """A node returned something that cannot be applied to the state."""


class InvalidConfigError(HitlError, ValueError):
    """The run's config lacks something the graph needs (a thread id, a valid limit, ...)."""


class EmptyInputError(HitlError, ValueError):
    """A run was started without input on a thread that has nothing to continue."""


class GraphRecursionError(HitlError, RecursionError):
    """The run took more supersteps than `recursion_limit` allows."""


class SerializationError(HitlError, TypeError):
    """A value cannot be encoded or decoded by the checkpoint serializer."""


class CheckpointCorruptError(SerializationError):
    """A stored checkpoint cannot be decoded: its bytes are damaged, or were not written by this
    engine and serializer (another version, another key, another program).

    `where` is the part that failed: "header", "channel 'name'" or "write of task 'id' ...".
    Nothing is written when it is raised; the row stays as it is for inspection.
    """

    def __init__(self, thread_id: str, checkpoint_id: str | None, where: str, detail: str):
        self.thread_id = thread_id
        self.checkpoint_id = checkpoint_id
        self.where = where
        self.detail = detail
        super().__init__(
            f"thread {thread_id!r}: checkpoint {checkpoint_id!r} cannot be decoded ({where}): "
            f"the stored bytes are damaged, or were not written by this engine/serializer "
            f"(another version, key or program). {detail}"
        )


class DecryptionError(SerializationError):
    """An encrypted value failed authentication, names an unknown key, or is not encrypted
    (see `hitl_async.crypto.EncryptedSerializer`)."""


class DriverNotFoundError(HitlError, LookupError):
    """`connect()` was given a URL whose scheme no installed driver handles."""


class CheckpointConflictError(HitlError):
    """A commit found the thread's head moved since the run started (another writer won).

    The commit is not applied: the chain never forks silently.
    """

    def __init__(
        self, thread_id: str, checkpoint_ns: str, expected: str | None, actual: str | None
    ):
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.expected = expected
        self.actual = actual
        ns = f" (namespace {checkpoint_ns!r})" if checkpoint_ns else ""
        super().__init__(
            f"thread {thread_id!r}{ns}: its head is {actual!r} but this run started from "
            f"{expected!r}; another writer committed first. Reload the thread and retry."
        )

    @classmethod
    def duplicate(
        cls,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        expected: str | None,
        head: str | None,
    ) -> CheckpointConflictError:
        """A commit of a checkpoint id that is already stored (ids are never reused)."""
        error = cls(thread_id, checkpoint_ns, expected, head)
        ns = f" (namespace {checkpoint_ns!r})" if checkpoint_ns else ""
        error.args = (
            f"thread {thread_id!r}{ns}: checkpoint {checkpoint_id!r} already exists; a commit "
            "never replaces a stored checkpoint. Reload the thread and retry.",
        )
        return error


class ThreadBusyError(HitlError):
    """Another run holds the thread's lease: one writer per thread."""

    def __init__(self, thread_id: str, holder: str | None, expires_at: float | None) -> None:
        self.thread_id = thread_id
        self.holder = holder
        self.expires_at = expires_at
        super().__init__(
            f"thread {thread_id!r} is busy: run {holder!r} holds it until {expires_at} (store "
            "clock). Wait for it (pass wait=<seconds>) or retry later."
        )


class LeaseLostError(HitlError):
    """A run's lease on its thread was taken over or released: its writes are refused."""

    def __init__(self, thread_id: str, token: int, current: int | None = None) -> None:
        self.thread_id = thread_id
        self.token = token
        self.current = current
        super().__init__(
            f"thread {thread_id!r}: this run's lease (token {token}) is no longer valid"
            + (f" (current token {current})" if current is not None else "")
            + "; another run took the thread over, so nothing was written."
        )


class StoreUnavailableError(HitlError, ConnectionError):
    """The checkpoint store could not be reached, its connection broke, or it refused a write
    (a file locked too long, read-only, or full). Nothing is known to be half-written: every
    driver write is atomic, so the thread's last committed checkpoint is intact and resumable.

    `transient` is True when the same call may succeed if retried (a dropped connection, a
    restarting server, a lock held longer than the busy timeout): the engine retries a commit or
    a pending write a few times with backoff before raising, and `attempts` says how many times
    it tried. False when it needs a human first (a read-only or full database file, a corrupt
    one): raised at once. `store` names the store (a file path, a host) and `cause` says what
    happened; the driver's own exception is chained as `__cause__`.
    """

    def __init__(
        self, store: str, cause: str, *, transient: bool = True, attempts: int = 1
    ) -> None:
        self.store = store
        self.cause = cause
        self.transient = transient
        self.attempts = attempts
        tried = f"; the engine tried {attempts} times" if attempts > 1 else ""
        then = (
            "run the thread again (stream(None, config)) to resume it once the store is back"
            if transient
            else "fix the store, then run the thread again (stream(None, config)) to resume it"
        )
        super().__init__(
            f"checkpoint store {store} is unavailable: {cause}{tried}. Nothing was half-written "
            f"and the thread's last committed checkpoint is intact: {then}."
        )

    def __reduce__(self) -> Any:
        return (
            _store_unavailable,
            (self.store, self.cause, self.transient, self.attempts),
        )

    def retried(self, attempts: int) -> StoreUnavailableError:
        """The same error, saying the engine tried `attempts` times."""
        return StoreUnavailableError(
            self.store, self.cause, transient=self.transient, attempts=attempts
        )


def _store_unavailable(
    store: str, cause: str, transient: bool, attempts: int
) -> StoreUnavailableError:
    return StoreUnavailableError(store, cause, transient=transient, attempts=attempts)


class GraphBubbleUp(Exception):
    """Control-flow signal that travels up from a node; never an error of its own."""


class GraphInterrupt(GraphBubbleUp):
    """Raised inside a node by `interrupt()` to pause the run; carries the pending interrupts."""

    reruns: bool = False
    """The pause is answered by running the node again (a `NodeInterrupt`, here or in a
    subgraph), not by giving `interrupt()` its answer."""

    def __init__(self, interrupts: Sequence[Interrupt] = ()) -> None:
        super().__init__(tuple(interrupts))
        self.interrupts: tuple[Interrupt, ...] = tuple(interrupts)


class NodeInterrupt(GraphInterrupt):
    """Raised by a node to pause the run with `value` (LangGraph's deprecated form of
    `interrupt(value)`, kept for older agents; it warns). Unlike `interrupt()`, nothing is
    answered: the thread pauses at the node, and `invoke(None, config)` (or a `Command(resume=)`)
    runs the node again from its start, typically after `update_state` changed what it checks.
    Raised in a node, its id is the one `interrupt()` there would get, unless `id` is given."""

    reruns = True

    def __init__(self, value: Any, id: str | None = None) -> None:
        from hitl_async._runtime import active_scratchpad, interrupt_id
        from hitl_async.types import Interrupt

        warnings.warn(
            "NodeInterrupt is deprecated (as in LangGraph 1.0). Please use "
            "`hitl_async.types.interrupt` instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        if id is None:
            pad = active_scratchpad()
            id = "placeholder-id" if pad is None else interrupt_id(pad.task_id, pad.counter)
        super().__init__([Interrupt(value, id)])


class GraphDrained(GraphBubbleUp):
    """The run stopped at a superstep boundary because its `RunControl.request_drain()` was
    called (say on SIGTERM): what ran is saved, and `invoke(None, config)` continues it."""

    def __init__(self, reason: str = "shutdown") -> None:
        self.reason = reason
        super().__init__(f"Graph drained: {reason}")


@dataclass(frozen=True, slots=True)
class NodeError:
    """What an error handler (`add_node(..., error_handler=...)`) is told about the failure:
    declare a parameter `error: NodeError` to receive it."""

    node: str
    """The node that failed."""
    error: BaseException
    """What it raised (after its retries)."""


class NodeCancelledError(Exception):
    """A node (or `@task`) raised `asyncio.CancelledError` itself, with nothing cancelling it
    (an inner task it awaited was cancelled, say): a failure of that node, as in LangGraph, so
    the run fails (or its error handler runs) instead of ending as if it were cancelled."""

    node: str

    def __init__(self, node: str, message: str | None = None) -> None:
        super().__init__(message or f"Node {node!r} raised asyncio.CancelledError")
        self.node = node


class NodeTimeoutError(Exception):
    """A node attempt ran past its `timeout=` (`kind` says which: "run", the wall-clock cap, or
    "idle", no progress). Not a builtin `TimeoutError` (an `OSError`), so the default
    `RetryPolicy` retries it, as in LangGraph."""

    node: str
    timeout: float
    run_timeout: float | None
    idle_timeout: float | None
    elapsed: float
    kind: Literal["idle", "run"]

    def __init__(
        self,
        node: str,
        elapsed: float,
        *,
        kind: Literal["idle", "run"],
        idle_timeout: float | None = None,
        run_timeout: float | None = None,
    ) -> None:
        if kind == "idle":
            if idle_timeout is None:
                raise ValueError("NodeTimeoutError: kind='idle' needs idle_timeout")
            self.timeout = idle_timeout
            message = (
                f"Node '{node}' exceeded its idle timeout of {idle_timeout:.3f}s without "
                f"making progress (elapsed: {elapsed:.3f}s)."
            )
        elif kind == "run":
            if run_timeout is None:
                raise ValueError("NodeTimeoutError: kind='run' needs run_timeout")
            self.timeout = run_timeout
            message = (
                f"Node '{node}' exceeded its run timeout of {run_timeout:.3f}s "
                f"(elapsed: {elapsed:.3f}s)."
            )
        else:
            raise ValueError(f"NodeTimeoutError: kind must be 'idle' or 'run', got {kind!r}")
        super().__init__(message)
        self.node = node
        self.elapsed = elapsed
        self.kind = kind
        self.run_timeout = run_timeout
        self.idle_timeout = idle_timeout


class StepTimeoutError(HitlError, TimeoutError):
    """A superstep ran past the graph's `step_timeout` (LangGraph raises a bare `TimeoutError`;
    this is one, so `except TimeoutError` catches both). Its async tasks still running were
    cancelled; what the step's other tasks wrote is kept, so running the thread again
    (`invoke(None, config)`) runs only the cancelled tasks."""

    def __init__(
        self, thread_id: str | None, step: int, timeout: float, cancelled: Sequence[str]
    ) -> None:
        where = f"thread {thread_id!r}, step {step}" if thread_id is not None else f"step {step}"
        ran = (
            f"cancelled its tasks still running: {list(cancelled)}"
            if cancelled
            else "its tasks ended only after it"
        )
        super().__init__(
            f"{where}: the superstep ran past step_timeout={timeout}s and {ran}; the writes of "
            "its finished tasks are kept: run the thread again (input None) to go on, or raise "
            "graph.step_timeout"
        )
        self.thread_id = thread_id
        self.step = step
        self.timeout = timeout
        self.cancelled = tuple(cancelled)


class ParentCommand(GraphBubbleUp):
    """Raised when a subgraph node returns `Command(graph=Command.PARENT)`."""

    def __init__(self, command: Any) -> None:
        super().__init__(command)
        self.command = command


class NoParentGraphError(ParentCommand, InvalidUpdateError):
    """A node of a graph run on its own (not as a subgraph) returned
    `Command(graph=Command.PARENT)`: raised out of the run as LangGraph's `ParentCommand` (the
    command as `args[0]`, so a test of a subgraph run alone can read where it hands off), and
    an `InvalidUpdateError` saying what happened."""

    def __init__(self, command: Any, node: str) -> None:
        super().__init__(command)
        self.node = node

    def __str__(self) -> str:
        return (
            f"node {self.node!r} returned Command(graph=Command.PARENT) but this graph has no "
            f"parent graph (run on its own); the command was {self.command!r}"
        )


def _ids(interrupts: Sequence[Interrupt]) -> str:
    if not interrupts:
        return "none"
    return ", ".join(f"{i.id!r}" for i in interrupts)


class ResumeError(HitlError, ValueError):
    """Base class of the strict resume errors; the thread is unchanged when one is raised."""

    def __init__(self, message: str, thread_id: str, pending: Sequence[Interrupt] = ()) -> None:
        super().__init__(message)
        self.thread_id = thread_id
        self.pending: tuple[Interrupt, ...] = tuple(pending)


class UnknownInterruptError(ResumeError):
    """A resume map names an interrupt id that is not pending (unknown, or already answered)."""

    def __init__(self, thread_id: str, unknown: Sequence[str], pending: Sequence[Interrupt]):
        self.unknown = tuple(unknown)
        super().__init__(
            f"thread {thread_id!r}: interrupt id(s) {', '.join(map(repr, unknown))} are not "
            f"pending (unknown, or already answered). Pending interrupt ids: {_ids(pending)}.",
            thread_id,
            pending,
        )


class NoPendingInterruptError(ResumeError):
    """`Command(resume=...)` was sent to a thread that is not paused on an interrupt."""

    def __init__(self, thread_id: str, *, exists: bool, next_nodes: Sequence[str] = ()):
        self.exists = exists
        if not exists:
            msg = (
                f"thread {thread_id!r} does not exist, so there is nothing to resume. Start it "
                "with an input first, or check the thread_id in the config."
            )
        else:
            hint = (
                f"it is paused before {tuple(next_nodes)!r}: continue it with stream(None, config)."
                if next_nodes
                else "it has finished: send new input to start another run."
            )
            msg = f"thread {thread_id!r} has no pending interrupt (pending ids: none); {hint}"
        super().__init__(msg, thread_id, ())


class AmbiguousResumeError(ResumeError, RuntimeError):
    """A scalar resume value was sent while more than one interrupt is pending (also a
    `RuntimeError`, which LangGraph raises there, so code written for it catches it)."""

    def __init__(self, thread_id: str, pending: Sequence[Interrupt]):
        super().__init__(
            f"thread {thread_id!r} has {len(pending)} pending interrupts, so a single resume value "
            "is ambiguous. When there are multiple pending interrupts, you must specify the "
            "interrupt id when resuming. Answer them by id with "
            f"Command(resume={{id: value, ...}}); pending interrupt ids: {_ids(pending)}.",
            thread_id,
            pending,
        )


class GeneratorNotSupportedError(HitlError, NotImplementedError):
    """`@entrypoint` was given a generator function (LangGraph refuses it the same way)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"@entrypoint function {name!r} is a generator: generators are not supported in the "
            "Functional API. Return the result instead, and send partial results with "
            "get_stream_writer() (or a `writer` parameter)."
        )


class CheckpointerRequiredError(HitlError, RuntimeError):
    """`interrupt()` was called in a graph compiled without a checkpointer."""

    def __init__(self, node: str) -> None:
        self.node = node
        super().__init__(
            f"node {node!r} called interrupt(), but the graph was compiled without a "
            "checkpointer, so the run could never be resumed. Compile it with one, e.g. "
            "builder.compile(checkpointer=InMemorySaver()), and pass a config with "
            "{'configurable': {'thread_id': ...}}."
        )


# -- store errors (drivers) -------------------------------------------------------------------


class MissingCapabilityError(InvalidConfigError):
    """A feature needs a capability the checkpoint store does not implement (see
    `hitl_async.checkpoint.capabilities`); raised before anything is read or written."""

    def __init__(
        self, store: str, missing: Sequence[str], needed_for: str, implement: Sequence[str]
    ) -> None:
        self.store = store
        self.missing = tuple(missing)
        self.needed_for = needed_for
        what = " and ".join(self.missing)
        super().__init__(
            f"{needed_for} needs a checkpoint store with {what}, and {store} has none. Use a "
            "store that has it (InMemorySaver(), or connect('sqlite:///…' | 'postgresql://…' | "
            f"'redis://…')), or implement {', '.join(implement)} in the driver."
        )


class StoreLostError(HitlError):
    """The checkpoint store this saver was using is gone or was replaced (a SQLite file deleted
    or swapped, a Redis server emptied by a restart without persistence, a PostgreSQL schema
    dropped): what it held is not there any more, so nothing was written and nothing read.
    `store` names the store and `cause` says what was found."""

    def __init__(self, store: str, cause: str) -> None:
        self.store = store
        self.cause = cause
        super().__init__(
            f"checkpoint store {store} is lost: {cause}. The threads it held are not there any "
            "more and nothing was written; restore it from a backup, or point the saver at the "
            "right store (a new saver starts an empty one)."
        )

    def __reduce__(self) -> Any:
        return (StoreLostError, (self.store, self.cause))


class CorruptRecordError(SerializationError):
    """A row a driver stored cannot be read back (an inbox entry, a run request, a checkpoint's
    metadata or versions): it was damaged in the store. Names the thread and the record; the
    other rows are unaffected."""

    def __init__(self, thread_id: str | None, record: str, detail: str) -> None:
        self.thread_id = thread_id
        self.record = record
        self.detail = detail
        where = f"thread {thread_id!r}: " if thread_id is not None else ""
        super().__init__(f"{where}{record} is damaged in the store and cannot be read: {detail}")

    def __reduce__(self) -> Any:
        return (CorruptRecordError, (self.thread_id, self.record, self.detail))


class InvalidThreadIdError(InvalidConfigError):
    """A thread id (or another id a store keeps) that no store can hold: not a string, empty,
    with a NUL character or a lone surrogate, or too long. Raised before anything is written."""

    def __init__(self, kind: str, value: object, problem: str) -> None:
        self.kind = kind
        self.value = value
        self.problem = problem
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:60] + "…" + shown[-10:]
        also = ", a uuid.UUID or an int" if kind == "thread id" else ""
        super().__init__(
            f"{kind} {shown} is not valid: {problem}. Use a non-empty str of printable text "
            f"(no NUL, no lone surrogate) of at most 1024 UTF-8 bytes{also}."
        )
