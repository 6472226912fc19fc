"""Node timeouts (`add_node(..., timeout=...)`): one attempt of an async node runs under a
watchdog that cancels it past its `run_timeout`, or past its `idle_timeout` without progress
(`runtime.heartbeat()`; under `refresh_on="auto"` also what it writes to the stream and every
LangChain callback event of what it calls, a chat model's tokens say, as in LangGraph), and the
attempt then raises `NodeTimeoutError` for the node's retry policy and error handler to see.

Only nodes with a timeout come here: the engine's usual path does not change."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio

from hitl_async._runtime import Scratchpad, active_scratchpad
from hitl_async.errors import GraphValidationError, NodeTimeoutError
from hitl_async.types import StreamWriter, TimeoutPolicy

if TYPE_CHECKING:
    from hitl_async.graph.state import NodeSpec

__all__ = ["call_timed", "check_timeout", "coerce_timeout", "send_timed", "timed"]

T = TypeVar("T")


def coerce_timeout(value: float | Any | TimeoutPolicy | None, node: str) -> TimeoutPolicy | None:
    """`add_node`'s `timeout=` as a policy in seconds; a bad value is a `GraphValidationError`
    (a `ValueError`, as LangGraph's) naming the node."""
    try:
        return TimeoutPolicy.coerce(value)
    except (TypeError, ValueError) as exc:
        raise GraphValidationError(
            f"node {node!r}: invalid timeout={value!r}: {exc}; give seconds > 0, a timedelta, "
            "or a TimeoutPolicy(run_timeout=..., idle_timeout=...)"
        ) from exc


def check_timeout(
    node: str, is_async: bool, policy: TimeoutPolicy | None, what: str = "Node"
) -> None:
    """A sync node (or `@task`) cannot be cancelled in its thread, so a timeout on one is
    refused at `compile()` (at declaration for `@task`/`@entrypoint`), with LangGraph's message."""
    if policy is not None and not is_async:
        raise GraphValidationError(
            "Node timeouts are only supported for async nodes because sync Python execution "
            f"cannot be safely cancelled in-process. {what} {node!r} is sync."
        )


class _Clock:
    """When the attempt last made progress (monotonic seconds); `touch` may be called from
    any thread (one float store)."""

    __slots__ = ("last",)

    def __init__(self, start: float) -> None:
        self.last = start

    def touch(self) -> None:
        self.last = time.monotonic()


_PROGRESS_HANDLER: type | None = None


def _progress_handler(clock: _Clock) -> Any:
    """A LangChain callback handler that counts any event as progress (needs langchain-core)."""
    global _PROGRESS_HANDLER
    if _PROGRESS_HANDLER is None:
        from langchain_core.callbacks import BaseCallbackHandler

        class ProgressHandler(BaseCallbackHandler):
            """Touches an attempt's idle clock on every callback event of what the node runs."""

            run_inline = True  # (in event order, in the thread that emits it)

            def __init__(self, clock: _Clock) -> None:
                self.clock = clock

            def _touch(self, *args: Any, **kwargs: Any) -> None:
                self.clock.touch()

            on_llm_start = on_chat_model_start = on_llm_new_token = on_llm_end = _touch
            on_llm_error = on_chain_start = on_chain_end = on_chain_error = _touch
            on_tool_start = on_tool_end = on_tool_error = on_text = on_retry = _touch
            on_retriever_start = on_retriever_end = on_retriever_error = _touch
            on_agent_action = on_agent_finish = on_custom_event = _touch

        _PROGRESS_HANDLER = ProgressHandler
    return _PROGRESS_HANDLER(clock)


@contextlib.contextmanager
def _callbacks_touching(clock: _Clock, kwargs: dict[str, Any]) -> Iterator[None]:
    """Inside: LangChain runs the node starts (through the context's config, or the `config`
    it was given) report their events to `clock` too."""
    try:
        from langchain_core.runnables.config import merge_configs, var_child_runnable_config
    except ImportError:  # (no langchain-core: nothing can emit callback events)
        yield
        return
    extra: Any = {"callbacks": [_progress_handler(clock)]}
    if isinstance(kwargs.get("config"), dict):
        kwargs["config"] = {**kwargs["config"], **merge_configs(kwargs["config"], extra)}
    token = var_child_runnable_config.set(
        merge_configs(var_child_runnable_config.get() or {}, extra)
    )
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


def _touching(writer: StreamWriter, clock: _Clock) -> StreamWriter:
    def write(chunk: Any) -> None:
        clock.touch()
        writer(chunk)

    return write


async def _watch(
    scope: anyio.CancelScope,
    clock: _Clock,
    start: float,
    policy: TimeoutPolicy,
    fired: list[Literal["idle", "run"]],
) -> None:
    """Sleep to the nearer limit; cancel `scope` once one passed, recording which."""
    run_s: float | None = policy.run_timeout  # type: ignore[assignment]  # (coerced: floats)
    idle_s: float | None = policy.idle_timeout  # type: ignore[assignment]
    run_end = start + run_s if run_s is not None else None
    while True:
        idle_end = clock.last + idle_s if idle_s is not None else None
        ends = [e for e in (run_end, idle_end) if e is not None]
        now = time.monotonic()
        if now >= min(ends):
            fired.append("run" if run_end is not None and now >= run_end else "idle")
            scope.cancel()
            return
        await anyio.sleep(min(ends) - now)


def timed(fn: Callable[..., Any], policy: TimeoutPolicy, node: str) -> Callable[..., Any]:
    """`fn` (an async node) with each call under `policy`."""

    @functools.wraps(fn)
    async def call(state: Any, **kwargs: Any) -> Any:
        pad = active_scratchpad()
        if pad is None:  # (called outside a run: no limits to apply)
            return await fn(state, **kwargs)
        return await call_timed(policy, node, pad, fn, state, kwargs)

    return call


def send_timed(node: NodeSpec, policy: TimeoutPolicy) -> Callable[..., Any]:
    """The node's function under a `Send`'s own timeout, in place of the node's; a sync node
    cannot take one (`GraphValidationError`, as `compile()` refuses its own timeout)."""
    check_timeout(node.name, node.is_async, policy)
    return timed(node.untimed or node.fn, policy, node.name)


async def call_timed(
    policy: TimeoutPolicy,
    node: str,
    pad: Scratchpad,
    fn: Callable[..., Awaitable[T]],
    state: Any,
    kwargs: dict[str, Any],
) -> T:
    """`await fn(state, **kwargs)` under `policy`; `NodeTimeoutError` when a limit passed (even
    if the body swallowed its cancellation, as LangGraph makes sure too)."""
    start = time.monotonic()
    clock = _Clock(start)
    writer, heartbeat = pad.writer, pad.heartbeat
    if policy.idle_timeout is not None:
        pad.heartbeat = clock.touch
        if policy.refresh_on == "auto":
            pad.writer = _touching(writer, clock)
        if "writer" in kwargs:
            kwargs["writer"] = pad.writer
        if "runtime" in kwargs:
            kwargs["runtime"] = kwargs["runtime"].override(
                stream_writer=pad.writer, heartbeat=clock.touch
            )
    fired: list[Literal["idle", "run"]] = []
    result: Any = None
    error: Exception | None = None
    touching = policy.idle_timeout is not None and policy.refresh_on == "auto"
    try:
        with _callbacks_touching(clock, kwargs) if touching else contextlib.nullcontext():
            async with anyio.create_task_group() as tg:
                with anyio.CancelScope() as scope:
                    tg.start_soon(_watch, scope, clock, start, policy, fired)
                    try:
                        result = await fn(state, **kwargs)
                    except Exception as exc:  # raised below, not in the group's ExceptionGroup
                        error = exc
                    finally:
                        tg.cancel_scope.cancel()  # stop the watchdog
    finally:
        pad.writer, pad.heartbeat = writer, heartbeat
    if fired:
        idle: float | None = policy.idle_timeout  # type: ignore[assignment]
        run: float | None = policy.run_timeout  # type: ignore[assignment]
        raise NodeTimeoutError(
            node, time.monotonic() - start, kind=fired[0], idle_timeout=idle, run_timeout=run
        ) from error
    if error is not None:
        raise error
    return result  # type: ignore[no-any-return]
