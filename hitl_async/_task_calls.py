"""`@task`: durable steps of an `@entrypoint`. A call returns a `TaskFuture` at once; the calls of
one attempt of the entrypoint are numbered in call order and run concurrently, and a call whose
result was kept with the checkpoint returns it without running its body again."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
from collections.abc import Awaitable, Callable, Generator, Sequence
from concurrent.futures import CancelledError
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

import anyio
import anyio.to_thread

from hitl_async import _sync
from hitl_async._background import Background
from hitl_async._cache import cache_key, cache_namespace
from hitl_async._execution import call_body
from hitl_async._payloads import emit_call_result, emit_call_start
from hitl_async._runtime import (
    Scratchpad,
    active_scratchpad,
    node_finished,
    reset_scratchpad,
    set_scratchpad,
)
from hitl_async._task import raised_by_body, retry_delay
from hitl_async._timeouts import call_timed, check_timeout, coerce_timeout
from hitl_async.constants import PULL, PUSH
from hitl_async.errors import (
    CheckpointerRequiredError,
    GraphBubbleUp,
    GraphInterrupt,
    NodeCancelledError,
)
from hitl_async.graph.state import is_async_callable
from hitl_async.runnables import call_scope_config, task_info, task_scope
from hitl_async.serde.serializer import register_types_from_signature
from hitl_async.types import CachePolicy, Interrupt, RetryPolicy, TimeoutPolicy

if TYPE_CHECKING:
    from anyio.abc import TaskGroup, TaskStatus

    from hitl_async.cache.base import BaseCache

__all__ = ["CALLER", "Caller", "TaskCalls", "TaskFunction", "TaskFuture", "TaskUpdate", "task"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """A finished task call, sent through the run's writer and streamed as `{name: result}`."""

    name: str
    value: Any
    cached: bool = False
    """The result came from the cache (`@task(cache_policy=...)`): the body did not run."""


# -- futures --------------------------------------------------------------------------------------


class TaskFuture(Generic[T]):
    """What calling a `@task` returns: `await fut` (async entrypoint) or `fut.result()` (sync),
    with the methods of LangGraph's (a `concurrent.futures.Future` or an asyncio one there):
    `done()`, `cancel()`, `cancelled()`, `exception()`, `add_done_callback()`."""

    __slots__ = ("_callbacks", "_done", "_error", "_event", "_scope", "_value")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None
        self._scope: anyio.CancelScope | None = None
        self._callbacks: list[Callable[[TaskFuture[T]], Any]] = []

    def _set(self, value: Any = None, error: BaseException | None = None) -> None:
        if self._done:  # (cancelled: what the call did afterwards is dropped)
            return
        self._value, self._error, self._done = value, error, True
        self._event.set()
        for callback in self._callbacks:
            callback(self)

    def _get(self) -> T:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[no-any-return]

    def done(self) -> bool:
        """Whether the call has finished, was cancelled, or was answered from the kept
        results."""
        return self._done

    def cancelled(self) -> bool:
        """Whether `cancel()` stopped the call before it finished."""
        return isinstance(self._error, CancelledError)

    def cancel(self) -> bool:
        """Stop the call if it has not finished: True, and `result()` or `await` then raise
        `concurrent.futures.CancelledError` (its result, if the body still finishes, is
        neither kept nor streamed); False once it is done, as LangGraph's futures. An async
        body is cancelled at its next `await`; a sync body in its thread cannot be stopped, and
        runs to its end."""
        if self._done:
            return False
        if _sync.in_event_loop():
            return self._cancel_now()
        return _sync.from_body(self._cancel_in_loop)

    async def _cancel_in_loop(self) -> bool:
        return self._cancel_now()

    def _cancel_now(self) -> bool:
        if self._done:
            return False
        if self._scope is not None:
            self._scope.cancel()
        self._set(error=CancelledError(f"the task call was cancelled: {self!r}"))
        return True

    def add_done_callback(self, fn: Callable[[TaskFuture[T]], Any]) -> None:
        """Call `fn(future)` once the call is done (at once if it is)."""
        if self._done:
            fn(self)
        else:
            self._callbacks.append(fn)

    async def _wait(self, timeout: float | None = None) -> T:
        with anyio.fail_after(timeout):
            await self._event.wait()
        return self._get()

    def result(self, timeout: float | None = None) -> T:
        """Block until the call finishes (at most `timeout` seconds, else `TimeoutError`); for
        sync entrypoints and tasks (worker threads)."""
        if self._done:
            return self._get()
        if _sync.in_event_loop():
            raise RuntimeError(
                "TaskFuture.result() would block the event loop: in an async entrypoint or "
                "task, use `await fut` instead"
            )
        return _sync.from_body(self._wait, timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The error the call raised (None if it returned), waiting as `result()` does; a
        cancelled call raises `CancelledError`."""
        try:
            self.result(timeout)
        except CancelledError:
            raise
        except TimeoutError:
            if not self._done:
                raise
        except BaseException:
            pass
        return self._error

    def __await__(self) -> Generator[Any, None, T]:
        return self._wait().__await__()

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled() else "done" if self._done else "running"
        return f"<TaskFuture {state}>"


# -- one run of an entrypoint node ----------------------------------------------------------------


@dataclass(eq=False, slots=True)
class TaskCalls:
    """One attempt of the entrypoint node, or a graph node's run: numbers its task calls and
    runs them concurrently (in the entrypoint's task group; a graph node's beside it, as
    `Background` tasks, since a node does not know beforehand that it calls tasks, joined when
    the node's attempt ends)."""

    pad: Scratchpad
    tg: TaskGroup | None
    calls: int = 0
    interrupted: dict[int, GraphInterrupt] = field(default_factory=dict)
    """Interrupts raised by task calls, by call index (calls run concurrently, so the order
    they paused in is not the order to report)."""
    running: list[TaskFuture[Any]] = field(default_factory=list)
    """A graph node's calls started in its current attempt (see `join`)."""
    joined: bool = False
    """The node's attempt ended: its calls' events wait in `late`."""
    late: list[Callable[[], None]] = field(default_factory=list)

    def _prepare(
        self, fn: TaskFunction[..., Any], args: Any, kwargs: Any, caller: Caller
    ) -> tuple[TaskFuture[Any], tuple[Any, ...] | None]:
        """The call's future, and the arguments of its runner (None: the result is kept)."""
        fut: TaskFuture[Any] = TaskFuture()
        if caller.nested:
            # A task called by a task runs as part of its caller; only the caller's result is kept.
            return fut, (fn, args, kwargs, None, caller.pad, fut)
        index = self.calls
        self.calls += 1
        if index in self.pad.results:
            if self.pad.run is not None:  # reported as starting, as LangGraph does; no result
                emit_call_start(self.pad.run, f"{self.pad.task_id}:{index}", fn.name, args, kwargs)
            fut._set(self.pad.results[index])
            if self.tg is None:  # a graph node's: what the kept call wrote is written again
                self.pad.call_sent.extend(self.pad.kept_writes.get(index, ()))
            return fut, None
        # The call's own interrupt ids (answered by id from the node's answers) and its own
        # subgraph namespace; its nested task calls are not kept on their own.
        child = dataclasses.replace(
            self.pad,
            task_id=f"{self.pad.task_id}:{index}",
            resume=[],
            counter=0,
            subgraph_calls=0,
            results={},
            save_result=None,
            # LangGraph's path of a call (its `langgraph_path`): pushed by the caller's task.
            extras={
                "path": (
                    PUSH,
                    self.pad.extras.get("path") or (PULL, self.pad.node),
                    index,
                    True,
                ),
                "step": self.pad.extras.get("step"),
            },
            node_calls=None,
            # A graph node's calls write apart from the node (to `Scratchpad.call_sent` once
            # they end, kept with their result); an entrypoint's write as the entrypoint (its
            # state has no key for them).
            sent=[] if self.tg is None else self.pad.sent,
            kept_writes={},
        )
        return fut, (fn, args, kwargs, index, child, fut)

    def start(
        self, fn: TaskFunction[..., Any], args: Any, kwargs: Any, caller: Caller
    ) -> TaskFuture[Any]:
        """Start a task call from the event loop thread (an async entrypoint or task)."""
        fut, runner = self._prepare(fn, args, kwargs, caller)
        if runner is not None and self.tg is not None:
            self.tg.start_soon(functools.partial(self._run, *runner))
        elif runner is not None:
            self.running.append(fut)
            Background(functools.partial(self._run, *runner))
        return fut

    async def start_from_thread(
        self, fn: TaskFunction[..., Any], args: Any, kwargs: Any, caller: Caller
    ) -> TaskFuture[Any]:
        """Start a task call for a worker thread; returns once the runner runs, so it always
        settles the future (a thread blocked in `result()` must not wait forever on cancel)."""
        fut, runner = self._prepare(fn, args, kwargs, caller)
        if runner is not None and self.tg is not None:
            await self.tg.start(self._run, *runner)
        elif runner is not None:
            self.running.append(fut)
            Background(functools.partial(self._run, *runner))
        return fut

    async def join(self) -> tuple[Interrupt, ...]:
        """Wait for the calls a graph node's attempt started and did not await, once it ended,
        as LangGraph's step waits for them: their results are kept and their writes count. An
        error stays on its future, unseen, as in LangGraph. Returns the interrupts of the calls
        that paused (the node pauses with them)."""
        self.joined = True
        for fut in self.running:  # (calls started by these calls are appended meanwhile)
            await fut._event.wait()
        self.running.clear()
        paused = tuple(i for _, gi in sorted(self.interrupted.items()) for i in gi.interrupts)
        self.interrupted.clear()
        return paused

    def _report(self, emit: Callable[[], None]) -> None:
        """Emit a call's event now, or, for a graph node's call that ended after its node did,
        after the node's own events (`late_events`), as LangGraph orders them."""
        if self.joined and self.tg is None:
            self.late.append(emit)
        else:
            emit()

    def late_events(self) -> list[Callable[[], None]]:
        """The events of calls that ended after their node did, for the step to emit after the
        node's own (and the next attempt's calls emit theirs at once again)."""
        late, self.late, self.joined = self.late, [], False
        return late

    def cancel(self) -> None:
        """Cancel the calls of a graph node's attempt still running (the attempt failed, or the
        step cancelled it): they run again with the node."""
        for fut in self.running:
            fut._cancel_now()
        self.running.clear()

    async def _run(
        self,
        fn: TaskFunction[..., Any],
        args: Any,
        kwargs: Any,
        index: int | None,
        pad: Scratchpad,
        fut: TaskFuture[Any],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        token = set_scratchpad(pad)
        caller = CALLER.set(Caller(self, pad, nested=True))
        try:
            with anyio.CancelScope() as fut._scope:  # (`fut.cancel()` cancels it)
                task_status.started()
                if not fut.cancelled():  # (cancelled before it started: it never runs)
                    await self._settle(fn, args, kwargs, index, pad, fut)
        finally:
            fut._scope = None
            CALLER.reset(caller)
            reset_scratchpad(token)

    async def _settle(
        self,
        fn: TaskFunction[..., Any],
        args: Any,
        kwargs: Any,
        index: int | None,
        pad: Scratchpad,
        fut: TaskFuture[Any],
    ) -> None:
        """Run the call and settle its future (its result kept with the checkpoint and streamed
        first, unless the call was cancelled meanwhile)."""
        run = self.pad.run if index is not None else None  # (a nested call is its caller's)
        if run is not None:
            emit_call_start(run, pad.task_id, fn.name, args, kwargs)
        try:
            cache = pad.run.cache if pad.run is not None and index is not None else None
            policy = fn.cache_policy if cache is not None else None
            cached = False
            if cache is not None and policy is not None:
                key = cache_key(fn.cache_namespace, policy, *args, **kwargs)
                hit = await cache.aget([key])
                cached = key in hit
                if cached:
                    value = hit[key]
                else:
                    value = await fn._execute(pad, args, kwargs, fresh_counter=True)
                    await cache.aset({key: (value, policy.ttl)})
            else:
                value = await fn._execute(pad, args, kwargs, fresh_counter=index is not None)
            if fut.cancelled():
                return
            writes = list(pad.sent) if self.tg is None and index is not None else []
            self.pad.call_sent.extend(writes)
            if index is not None and self.pad.save_result is not None:
                await self.pad.save_result(index, value, writes)
            if self.pad.run is not None:
                node_finished(self.pad.run.config, fn.name)
            if self.tg is None and self.pad.run is not None:
                # A graph node's call: an `updates` event of its own, as LangGraph streams it.
                update: dict[str, Any] = {fn.name: value}
                if cached:
                    update["__metadata__"] = {"cached": True}
                self._report(functools.partial(self.pad.run.emit, "updates", update))
            else:
                self.pad.writer(TaskUpdate(fn.name, value, cached))
            if run is not None:  # (after its update, as LangGraph's order is)
                self._report(functools.partial(emit_call_result, run, pad.task_id, fn.name, value))
            fut._set(value)
        except GraphInterrupt as gi:
            if index is not None and not fut.cancelled():
                self.interrupted[index] = gi
            if run is not None:
                paused = tuple(gi.interrupts)
                self._report(
                    functools.partial(
                        emit_call_result, run, pad.task_id, fn.name, interrupts=paused
                    )
                )
            fut._set(error=gi)
        except Exception as exc:
            if run is not None:
                failed = functools.partial(emit_call_result, run, pad.task_id, fn.name, error=exc)
                self._report(failed)
            fut._set(error=exc)
        except BaseException:
            fut._set(error=RuntimeError(f"task {fn.name!r} was cancelled with its entrypoint"))
            raise


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling tasks in this context: the entrypoint function, or a running task."""

    attempt: TaskCalls
    pad: Scratchpad
    nested: bool


CALLER: ContextVar[Caller | None] = ContextVar("hitl_async_task_caller", default=None)


def _node_caller(pad: Scratchpad) -> Caller:
    """The caller of task calls made by a graph node (LangGraph runs them as tasks of the
    node's step): calls numbered per run of the node, their results kept with its task."""
    found = pad.extras.get(_NODE_CALLS)
    if found is None:
        found = pad.extras[_NODE_CALLS] = Caller(TaskCalls(pad, None), pad, nested=False)
        pad.node_calls = found.attempt  # (joined or cancelled at the end of each attempt)
    caller: Caller = found
    return caller


_NODE_CALLS = "task_calls"


# -- @task ----------------------------------------------------------------------------------------


class TaskFunction(Generic[P, T]):
    """A function made a durable step by `@task`; call it inside an `@entrypoint`."""

    def __init__(
        self,
        func: Callable[P, Any],
        *,
        name: str | None = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        cache_policy: CachePolicy | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
    ) -> None:
        self.func = func
        inner = func
        while isinstance(inner, functools.partial):  # named after the function, as LangGraph
            inner = inner.func
        self.name: str = name or getattr(inner, "__name__", None) or repr(func)
        self.cache_policy = cache_policy
        self.cache_namespace = cache_namespace(inner, self.name)
        if retry_policy is None:
            self.retry_policy: tuple[RetryPolicy, ...] = ()
        elif isinstance(retry_policy, RetryPolicy):
            self.retry_policy = (retry_policy,)
        else:
            self.retry_policy = tuple(retry_policy)
        self.is_async = is_async_callable(func)
        self.timeout = coerce_timeout(timeout, self.name)
        check_timeout(self.name, self.is_async, self.timeout, "Task")
        register_types_from_signature(inner)  # its arguments and result are stored
        functools.update_wrapper(self, func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> TaskFuture[T]:
        caller = CALLER.get()
        pad = active_scratchpad()
        if caller is None or pad is not caller.pad:
            # (A node of a graph run inside the entrypoint sees the caller but has its own pad.)
            if pad is None or pad.run is None:
                raise RuntimeError(
                    f"task {self.name!r} was called outside an @entrypoint or a graph node. "
                    "Tasks run inside a workflow (their results are kept with its checkpoint); "
                    f"to run the body directly, call {self.name}.func(...)"
                )
            caller = _node_caller(pad)
        attempt = caller.attempt
        if _sync.in_event_loop():
            return attempt.start(self, args, kwargs, caller)
        return _sync.from_body(attempt.start_from_thread, self, args, kwargs, caller)

    async def _call(self, pad: Scratchpad, args: Any, kwargs: Any) -> Any:
        """One attempt of the body (under its timeout, if it has one)."""
        events = pad.run.events if pad.run is not None else None
        if self.timeout is not None:  # (async bodies only: checked when declared)
            body = functools.partial(call_body, self.func, True, args, kwargs)
            return await call_timed(self.timeout, self.name, pad, body, events, {})
        return await call_body(self.func, self.is_async, args, kwargs, events)

    async def _execute(
        self, pad: Scratchpad, args: Any, kwargs: Any, *, fresh_counter: bool
    ) -> Any:
        """Run the body (sync bodies in a worker thread), retrying per the task's policies."""
        attempt = 0
        while True:
            attempt += 1
            if fresh_counter:
                pad.counter = 0
            try:
                scoped = call_scope_config(pad.config)
                if scoped is None:
                    return await self._call(pad, args, kwargs)
                info = dataclasses.replace(task_info(pad), node=self.name)
                inputs = _call_inputs(self.func, args, kwargs)
                with task_scope(scoped, info, inputs, step_tag=False) as scope:
                    output = await self._call(pad, args, kwargs)
                    scope.end(output)
                return output
            except (GraphBubbleUp, CheckpointerRequiredError):
                raise
            except asyncio.CancelledError as exc:
                if not raised_by_body():
                    raise
                raise NodeCancelledError(self.name) from exc  # a failure, as in LangGraph
            except Exception as exc:
                policy = next((p for p in self.retry_policy if p.should_retry(exc)), None)
                if policy is None or attempt >= policy.max_attempts:
                    raise
                await anyio.sleep(retry_delay(policy, attempt))

    async def aclear_cache(self, cache: BaseCache[Any]) -> None:
        """Forget this task's cached results in `cache`."""
        await cache.aclear([self.cache_namespace])

    def clear_cache(self, cache: BaseCache[Any]) -> None:
        """Forget this task's cached results in `cache`."""
        cache.clear([self.cache_namespace])

    def __repr__(self) -> str:
        return f"<task {self.name}>"


@overload
def task(
    __func_or_none__: Callable[P, Awaitable[T]],
) -> TaskFunction[P, T]: ...


@overload
def task(
    __func_or_none__: Callable[P, T],
) -> TaskFunction[P, T]: ...


@overload
def task(
    __func_or_none__: None = None,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
    cache_policy: CachePolicy | None = None,
    timeout: float | timedelta | TimeoutPolicy | None = None,
) -> Callable[[Callable[P, Any]], TaskFunction[P, Any]]: ...


def task(
    __func_or_none__: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
    cache_policy: CachePolicy | None = None,
    timeout: float | timedelta | TimeoutPolicy | None = None,
) -> Any:
    """Make a function a durable step of an `@entrypoint` (use as `@task` or `@task(...)`).

    Calling it returns a `TaskFuture` at once, so calls made together run concurrently. A
    finished call's result is kept with the checkpoint: when the entrypoint reruns (on resume),
    the call returns the kept result and the body does not run again.
    """

    def wrap(func: Callable[..., Any]) -> TaskFunction[..., Any]:
        return TaskFunction(
            func,
            name=name,
            retry_policy=retry_policy,
            cache_policy=cache_policy,
            timeout=timeout,
        )

    if __func_or_none__ is not None:
        return wrap(__func_or_none__)
    coerce_timeout(timeout, name or "task")  # a bad timeout fails here, as in LangGraph
    return wrap


def _call_inputs(func: Callable[..., Any], args: Any, kwargs: Any) -> dict[str, Any]:
    """A task call's arguments by parameter name, as its traced run shows them."""
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {"args": list(args), **kwargs}
    return dict(bound.arguments)
