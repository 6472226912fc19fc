"""Value types of the public API, mirroring `langgraph.types` so a port is a rename of imports."""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Generic, Literal, NamedTuple, TypeVar

from hitl_async.errors import GraphInterrupt, GraphValidationError, InvalidUpdateError

__all__ = [
    "CANCEL",
    "All",
    "CachePolicy",
    "Command",
    "Durability",
    "GraphInterrupt",
    "Interrupt",
    "Overwrite",
    "PregelTask",
    "RetryPolicy",
    "Send",
    "StateSnapshot",
    "StateUpdate",
    "StreamMode",
    "StreamWriter",
    "TimeoutAction",
    "TimeoutPolicy",
    "default_cache_key",
    "default_retry_on",
    "interrupt",
    "overwritten",
]

N = TypeVar("N", bound=Hashable)

StreamMode = Literal["values", "updates", "custom", "debug", "checkpoints", "tasks", "messages"]
"""What `stream()` yields: see the README's streaming section."""

Durability = Literal["sync", "async", "exit"]
"""When checkpoints are written: before the next step, while it runs, or only when the run ends."""

All = Literal["*"]


class TimeoutAction(enum.Enum):
    """What a worker does when an interrupt's deadline passes, besides resuming with a value."""

    CANCEL = "cancel"


CANCEL = TimeoutAction.CANCEL
"""`interrupt(..., timeout=..., on_timeout=CANCEL)`: cancel the thread when the deadline passes."""


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A pause raised by `interrupt(value)`; answered by `Command(resume=...)` (by `id` if many).

    `created_at`, `deadline` (seconds since the epoch) and `on_timeout` are filled in by the
    engine and shown in the inbox; they do not take part in equality. `response_schema` is the
    JSON Schema the node asked its answer to follow, as LangGraph's.
    """

    value: Any
    id: str
    created_at: str | None = field(default=None, repr=False, compare=False)
    response_schema: dict[str, Any] | None = field(default=None, repr=False)
    """The JSON Schema the answer should follow (`interrupt(..., response_schema=...)`)."""
    deadline: float | None = field(default=None, repr=False, compare=False)
    on_timeout: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Overwrite:
    """A write that replaces a key's value instead of going through its reducer:
    `return {"messages": Overwrite(["only this"])}`. Two `Overwrite`s of one key in one step
    are an `InvalidUpdateError`; writes after it in the same step are dropped, as in LangGraph."""

    value: Any
    type: Literal["__overwrite__"] = "__overwrite__"


OVERWRITE = "__overwrite__"


def overwritten(value: Any) -> tuple[bool, Any]:
    """Whether `value` is an overwrite, and what it writes: an `Overwrite`, or its JSON forms
    `{"__overwrite__": v}` and `{"type": "__overwrite__", "value": v}` (what an HTTP client
    sends)."""
    if isinstance(value, Overwrite):
        return True, value.value
    if isinstance(value, dict):
        if len(value) == 1 and OVERWRITE in value:
            return True, value[OVERWRITE]
        if value.get("type") == OVERWRITE and "value" in value:
            return True, value["value"]
    return False, None


StreamWriter = Callable[[Any], None]
"""What `get_stream_writer()` returns and a node's `writer` parameter is: call it with a chunk
for `stream_mode="custom"`."""


@dataclass(frozen=True, slots=True)
class Send:
    """Run `node` in the next superstep with `arg` as its whole input (fan-out / map-reduce).
    `timeout=` (seconds or a `timedelta`: a run timeout, or a `TimeoutPolicy`) limits that one
    task in place of the node's own timeout, as LangGraph's (async nodes only)."""

    node: str
    arg: Any
    timeout: TimeoutPolicy | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.timeout is None:
            return
        try:
            policy = TimeoutPolicy.coerce(self.timeout)
        except (TypeError, ValueError) as exc:
            raise GraphValidationError(
                f"Send({self.node!r}, ...): invalid timeout={self.timeout!r}: {exc}; give "
                "seconds > 0, a timedelta, or a TimeoutPolicy(run_timeout=..., idle_timeout=...)"
            ) from exc
        if policy is not self.timeout:  # (in seconds, or None for a policy with no limit)
            object.__setattr__(self, "timeout", policy)

    def __repr__(self) -> str:
        if self.timeout is None:
            return f"Send(node={self.node!r}, arg={self.arg!r})"
        return f"Send(node={self.node!r}, arg={self.arg!r}, timeout={self.timeout!r})"


@dataclass(frozen=True, slots=True)
class Command(Generic[N]):
    """Update state, route, resume an interrupt, or address the parent graph, in one value.

    Returned by a node (`update`, `goto`, `graph`) or passed as run input (`resume`, `update`,
    `goto`).
    """

    graph: str | None = None
    update: Any | None = None
    resume: Any | None = None
    goto: Send | Sequence[Send | N] | N = ()

    PARENT: ClassVar[Literal["__parent__"]] = "__parent__"

    def __repr__(self) -> str:
        parts = [
            f"{name}={value!r}"
            for name in ("graph", "update", "resume", "goto")
            if (value := getattr(self, name)) is not None and value != ()
        ]
        return f"Command({', '.join(parts)})"

    def goto_targets(self) -> tuple[Any, ...]:
        """`goto` as a tuple of node names and `Send`s."""
        goto: Any = self.goto
        if isinstance(goto, (str, Send)):
            return (goto,)
        if goto is not None and not isinstance(goto, (list, tuple)):
            raise InvalidUpdateError(
                f"Command(goto={goto!r}): expected a node name, a Send, or a list of them, "
                f"got {type(goto).__name__}"
            )
        return tuple(goto or ())

    def update_items(self) -> list[tuple[str, Any]]:
        """`update` as (key, value) pairs, accepting a dict, pairs, or a state object."""
        from hitl_async._schema import update_as_items

        return update_as_items(self.update)


def _is_requests_http_error(exc: BaseException) -> bool:
    """Whether `exc` is a `requests.HTTPError` (checked without importing requests)."""
    return any(
        c.__name__ == "HTTPError" and c.__module__.startswith("requests") for c in type(exc).__mro__
    )


def default_retry_on(exc: BaseException) -> bool:
    """Retry transient failures; do not retry programming errors (LangGraph's default rule)."""
    if isinstance(exc, ConnectionError):
        return True
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        return 500 <= status < 600
    if response is None and _is_requests_http_error(exc):
        return True  # no response at all: a transport failure, retried as in LangGraph
    return not isinstance(
        exc,
        (
            ValueError,
            TypeError,
            ArithmeticError,
            ImportError,
            LookupError,
            NameError,
            SyntaxError,
            RuntimeError,
            ReferenceError,
            StopIteration,
            StopAsyncIteration,
            OSError,
        ),
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failing node is retried: exponential backoff between `max_attempts` attempts."""

    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    max_attempts: int = 3
    jitter: bool = True
    retry_on: (
        type[BaseException] | Sequence[type[BaseException]] | Callable[[BaseException], bool]
    ) = field(default=default_retry_on)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether `exc` is one this policy retries."""
        rule = self.retry_on
        if isinstance(rule, type):
            return isinstance(exc, rule)
        if isinstance(rule, Sequence):
            return isinstance(exc, tuple(rule))
        return bool(rule(exc))


def _seconds(value: float | timedelta | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds <= 0:
        raise ValueError(f"{name} must be greater than 0, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    """Time limits of one node attempt (`add_node(..., timeout=...)`): `run_timeout` caps its
    wall-clock time, `idle_timeout` the time without progress (`runtime.heartbeat()`, and under
    `refresh_on="auto"` also what it writes to the stream). Past either, the attempt is
    cancelled and `NodeTimeoutError` raised, which its `RetryPolicy` may retry. Async nodes
    only: a sync body cannot be stopped (`compile()` refuses one), as in LangGraph."""

    run_timeout: float | timedelta | None = None
    idle_timeout: float | timedelta | None = None
    refresh_on: Literal["auto", "heartbeat"] = "auto"

    @classmethod
    def coerce(cls, value: float | timedelta | TimeoutPolicy | None) -> TimeoutPolicy | None:
        """`value` as a policy of positive seconds: a number or `timedelta` is a `run_timeout`;
        None (or a policy with neither limit) is no timeout. `ValueError` for a limit <= 0."""
        if value is None:
            return None
        if not isinstance(value, TimeoutPolicy):
            value = cls(run_timeout=value)
        if value.refresh_on not in ("auto", "heartbeat"):
            raise ValueError(f"refresh_on must be 'auto' or 'heartbeat', got {value.refresh_on!r}")
        run = _seconds(value.run_timeout, "run_timeout")
        idle = _seconds(value.idle_timeout, "idle_timeout")
        if run is None and idle is None:
            return None
        if all(v is None or type(v) is float for v in (value.run_timeout, value.idle_timeout)):
            return value  # already in seconds: shared as is (frozen)
        return cls(run_timeout=run, idle_timeout=idle, refresh_on=value.refresh_on)


def _freeze(obj: Any, depth: int = 10) -> Any:
    """A hashable, order-independent form of `obj` (dicts sorted by key, sequences as tuples)."""
    if depth <= 0:
        return obj
    if isinstance(obj, dict):
        return tuple(sorted(((k, _freeze(v, depth - 1)) for k, v in obj.items()), key=repr))
    if isinstance(obj, (list, tuple)):
        return tuple(_freeze(v, depth - 1) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return tuple(sorted((_freeze(v, depth - 1) for v in obj), key=repr))
    return obj


def default_cache_key(*args: Any, **kwargs: Any) -> bytes:
    """The default `CachePolicy.key_func`: a pickle of the call's arguments, dicts ordered by
    key, so equal inputs give equal keys (LangGraph's rule)."""
    import pickle

    return pickle.dumps((_freeze(args), _freeze(kwargs)), protocol=5)


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Cache a node's (or `@task`'s) result: a call with the same input (`key_func` of it) within
    `ttl` seconds (None: until cleared) reuses the result instead of running again. Needs a
    cache: `compile(cache=InMemoryCache())` (or `@entrypoint(cache=...)`)."""

    key_func: Callable[..., str | bytes] = default_cache_key
    ttl: int | float | None = None


class PregelTask(NamedTuple):
    """A task of the step a snapshot is paused on (or that failed)."""

    id: str
    name: str
    path: tuple[Any, ...]
    error: str | None = None
    """How the task failed, as text: `repr()` of its exception, as LangGraph shows it. A
    snapshot is read from the store, and loading never rebuilds arbitrary exception classes."""
    interrupts: tuple[Interrupt, ...] = ()
    state: Any = None
    result: Any | None = None


class StateUpdate(NamedTuple):
    """One update of `bulk_update_state`: `values` written as if node `as_node` returned them
    (`as_node` may also be `"__copy__"`, `"__input__"` or END; see `update_state`)."""

    values: dict[str, Any] | Any | None
    as_node: str | None = None
    task_id: str | None = None


class StateSnapshot(NamedTuple):
    """A thread's state at one checkpoint, as returned by `get_state()`."""

    values: dict[str, Any] | Any
    """The state's values (an `@entrypoint`'s: its last return value, any type)."""
    next: tuple[str, ...]
    config: dict[str, Any]
    metadata: dict[str, Any] | None
    created_at: str | None
    parent_config: dict[str, Any] | None
    tasks: tuple[PregelTask, ...]
    interrupts: tuple[Interrupt, ...] = ()


def interrupt(
    value: Any,
    *,
    response_schema: type | dict[str, Any] | None = None,
    timeout: float | None = None,
    on_timeout: Any = None,
) -> Any:
    """Pause the run and surface `value` to the caller; returns the answer once resumed.

    The node runs again from its first line on resume; the n-th `interrupt()` call of a node
    returns the n-th answer given to it. `response_schema` (a type, or a JSON Schema dict) is
    shown on the `Interrupt` as JSON Schema; a type also turns the answer into that type (a
    pydantic model from a dict, ...), as LangGraph does. With `timeout` (seconds), a running
    `Worker` resumes the thread with `on_timeout` as the answer once the deadline passes, or
    cancels the thread if `on_timeout` is `CANCEL`.
    """
    from hitl_async._response_schema import coerce_answer, json_schema_of
    from hitl_async._runtime import current_scratchpad

    if timeout is not None and timeout < 0:
        raise ValueError(f"interrupt(timeout=...) must be >= 0 seconds, got {timeout}")
    pad = current_scratchpad("interrupt")
    if response_schema is None:
        return pad.interrupt(value, timeout, on_timeout)
    schema = json_schema_of(response_schema)
    if isinstance(response_schema, type):  # the node names it: its answers may be stored
        register = getattr(getattr(pad.run, "serde", None), "register_types_from_annotation", None)
        if register is not None:
            register(response_schema)
    return coerce_answer(pad.interrupt(value, timeout, on_timeout, schema), response_schema)
