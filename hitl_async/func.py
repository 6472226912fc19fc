"""The functional API, mirroring `langgraph.func`: write a workflow as a plain function
(`@entrypoint`) that calls durable steps (`@task`) instead of drawing a graph.

An entrypoint compiles to a one-node graph, so streaming, `invoke`, `get_state` and resuming work
as for any graph. The node reruns the function from its first line on resume; each `@task` call
gets an index from the order of calls, and a call whose result was kept with the checkpoint
returns that result without running its body again. `interrupt()` works in the entrypoint and in
tasks: every interrupt gets an id from where it is raised (the entrypoint, or task call `i`) and is
answered by that id, so a kept task, whose body and interrupts no longer run, never shifts the
answers of the interrupts that follow it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from typing_extensions import TypedDict

from hitl_async._runtime import (
    _SCRATCHPAD,
    Scratchpad,
    current_scratchpad,
    reset_scratchpad,
    set_scratchpad,
)
from hitl_async._subgraph import run_subgraph
from hitl_async._task import _backoff
from hitl_async.constants import END, INTERRUPT, START
from hitl_async.errors import CheckpointerRequiredError, GraphBubbleUp, GraphInterrupt
from hitl_async.graph.compiled import CompiledStateGraph, _in_node, _modes
from hitl_async.graph.state import StateGraph, _is_async
from hitl_async.types import Command, RetryPolicy, StateSnapshot

if TYPE_CHECKING:
    from anyio.abc import TaskGroup, TaskStatus

    from hitl_async.checkpoint.base import BaseSaver
    from hitl_async.types import StreamMode

__all__ = ["EntrypointGraph", "TaskFuture", "entrypoint", "task"]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")


class _EntrypointState(TypedDict, total=False):
    """The entrypoint graph's channels; `previous` is what the next run sees as `previous`."""

    input: Any
    output: Any
    previous: Any


@dataclass(frozen=True, slots=True)
class _TaskUpdate:
    """A finished task call, sent through the run's writer and streamed as `{name: result}`."""

    name: str
    value: Any


# -- futures --------------------------------------------------------------------------------------


class TaskFuture(Generic[T]):
    """What calling a `@task` returns: `await fut` (async entrypoint) or `fut.result()` (sync)."""

    __slots__ = ("_done", "_error", "_event", "_loop_thread", "_value")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._loop_thread = threading.get_ident()
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def _set(self, value: Any = None, error: BaseException | None = None) -> None:
        self._value, self._error, self._done = value, error, True
        self._event.set()

    def _get(self) -> T:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[no-any-return]

    def done(self) -> bool:
        """Whether the call has finished (or was answered from the kept results)."""
        return self._done

    async def _wait(self) -> T:
        await self._event.wait()
        return self._get()

    def result(self) -> T:
        """Block until the call finishes; for sync entrypoints and tasks (worker threads)."""
        if self._done:
            return self._get()
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                "TaskFuture.result() would block the event loop: in an async entrypoint or "
                "task, use `await fut` instead"
            )
        return anyio.from_thread.run(self._wait)

    def __await__(self) -> Generator[Any, None, T]:
        return self._wait().__await__()

    def __repr__(self) -> str:
        state = "done" if self._done else "running"
        return f"<TaskFuture {state}>"


# -- one run of an entrypoint node ----------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Attempt:
    """One attempt of the entrypoint node: numbers its task calls and runs them concurrently."""

    pad: Scratchpad
    tg: TaskGroup
    loop_thread: int
    calls: int = 0
    interrupted: list[GraphInterrupt] = field(default_factory=list)
    """Interrupts raised by task calls, in the order they paused."""

    def _prepare(
        self, fn: _TaskFunction[..., Any], args: Any, kwargs: Any, caller: _Caller
    ) -> tuple[TaskFuture[Any], tuple[Any, ...] | None]:
        """The call's future, and the arguments of its runner (None: the result is kept)."""
        fut: TaskFuture[Any] = TaskFuture()
        if caller.nested:
            # A task called by a task runs as part of its caller; only the caller's result is kept.
            return fut, (fn, args, kwargs, None, caller.pad, fut)
        index = self.calls
        self.calls += 1
        if index in self.pad.results:
            fut._set(self.pad.results[index])
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
            extras={},
        )
        return fut, (fn, args, kwargs, index, child, fut)

    def start(
        self, fn: _TaskFunction[..., Any], args: Any, kwargs: Any, caller: _Caller
    ) -> TaskFuture[Any]:
        """Start a task call from the event loop thread (an async entrypoint or task)."""
        fut, runner = self._prepare(fn, args, kwargs, caller)
        if runner is not None:
            self.tg.start_soon(self._run, *runner)
        return fut

    async def start_from_thread(
        self, fn: _TaskFunction[..., Any], args: Any, kwargs: Any, caller: _Caller
    ) -> TaskFuture[Any]:
        """Start a task call for a worker thread; returns once the runner runs, so it always
        settles the future (a thread blocked in `result()` must not wait forever on cancel)."""
        fut, runner = self._prepare(fn, args, kwargs, caller)
        if runner is not None:
            await self.tg.start(self._run, *runner)
        return fut

    async def _run(
        self,
        fn: _TaskFunction[..., Any],
        args: Any,
        kwargs: Any,
        index: int | None,
        pad: Scratchpad,
        fut: TaskFuture[Any],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        token = set_scratchpad(pad)
        caller = _CALLER.set(_Caller(self, pad, nested=True))
        try:
            task_status.started()
            value = await fn._execute(pad, args, kwargs, fresh_counter=index is not None)
            if index is not None and self.pad.save_result is not None:
                await self.pad.save_result(index, value)
            self.pad.writer(_TaskUpdate(fn.name, value))
            fut._set(value)
        except GraphInterrupt as gi:
            if index is not None:
                self.interrupted.append(gi)
            fut._set(error=gi)
        except Exception as exc:
            fut._set(error=exc)
        except BaseException:
            fut._set(error=RuntimeError(f"task {fn.name!r} was cancelled with its entrypoint"))
            raise
        finally:
            _CALLER.reset(caller)
            reset_scratchpad(token)


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who is calling tasks in this context: the entrypoint function, or a running task."""

    attempt: _Attempt
    pad: Scratchpad
    nested: bool


_CALLER: ContextVar[_Caller | None] = ContextVar("hitl_async_task_caller", default=None)


# -- @task ----------------------------------------------------------------------------------------


class _TaskFunction(Generic[P, T]):
    """A function made a durable step by `@task`; call it inside an `@entrypoint`."""

    def __init__(
        self,
        func: Callable[P, Any],
        *,
        name: str | None = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
    ) -> None:
        self.func = func
        self.name: str = name or getattr(func, "__name__", None) or repr(func)
        if retry_policy is None:
            self.retry_policy: tuple[RetryPolicy, ...] = ()
        elif isinstance(retry_policy, RetryPolicy):
            self.retry_policy = (retry_policy,)
        else:
            self.retry_policy = tuple(retry_policy)
        self.is_async = _is_async(func)
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> TaskFuture[T]:
        caller = _CALLER.get()
        pad = _SCRATCHPAD.get()
        if caller is None or pad is not caller.pad:
            # (A node of a graph run inside the entrypoint sees the caller but has its own pad.)
            raise RuntimeError(self._outside_message(in_node=pad is not None))
        attempt = caller.attempt
        if threading.get_ident() == attempt.loop_thread:
            return attempt.start(self, args, kwargs, caller)
        return anyio.from_thread.run(attempt.start_from_thread, self, args, kwargs, caller)

    def _outside_message(self, *, in_node: bool) -> str:
        where = (
            "from a StateGraph node, which is not supported: make the workflow an @entrypoint"
            if in_node
            else "outside an @entrypoint"
        )
        return (
            f"task {self.name!r} was called {where}. Tasks run inside an @entrypoint function "
            f"(its result is kept with the checkpoint); to run the body directly, call "
            f"{self.name}.func(...)"
        )

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
                if self.is_async:
                    return await self.func(*args, **kwargs)
                return await anyio.to_thread.run_sync(functools.partial(self.func, *args, **kwargs))
            except (GraphBubbleUp, CheckpointerRequiredError):
                raise
            except Exception as exc:
                policy = next((p for p in self.retry_policy if p.should_retry(exc)), None)
                if policy is None or attempt >= policy.max_attempts:
                    raise
                await anyio.sleep(_backoff(policy, attempt))

    def __repr__(self) -> str:
        return f"<task {self.name}>"


@overload
def task(
    __func_or_none__: Callable[P, Awaitable[T]],
) -> _TaskFunction[P, T]: ...


@overload
def task(
    __func_or_none__: Callable[P, T],
) -> _TaskFunction[P, T]: ...


@overload
def task(
    __func_or_none__: None = None,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
) -> Callable[[Callable[P, Any]], _TaskFunction[P, Any]]: ...


def task(
    __func_or_none__: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
) -> Any:
    """Make a function a durable step of an `@entrypoint` (use as `@task` or `@task(...)`).

    Calling it returns a `TaskFuture` at once, so calls made together run concurrently. A
    finished call's result is kept with the checkpoint: when the entrypoint reruns (on resume),
    the call returns the kept result and the body does not run again.
    """

    def wrap(func: Callable[..., Any]) -> _TaskFunction[..., Any]:
        return _TaskFunction(func, name=name, retry_policy=retry_policy)

    if __func_or_none__ is not None:
        return wrap(__func_or_none__)
    return wrap


# -- @entrypoint ----------------------------------------------------------------------------------


class EntrypointGraph(CompiledStateGraph):
    """The compiled form of an `@entrypoint` function: a graph whose state is its return value.

    Streams `{task_name: result}` per task call and `{entrypoint_name: return_value}`;
    `invoke()` returns the return value, `get_state().values` is the last one.
    """

    entry_name: str

    # -- input and output mapping ----------------------------------------------------------------

    @staticmethod
    def _wrap_input(input: Any) -> Any:
        if input is None:
            return None
        if isinstance(input, Command):
            if input.update is None:
                return input
            return Command(
                graph=input.graph,
                update={"output": input.update, "previous": input.update},
                resume=input.resume,
                goto=input.goto,
            )
        return {"input": input}

    @staticmethod
    def _paused(value: Any, interrupts: Any) -> Any:
        if isinstance(value, dict):
            return {**value, INTERRUPT: interrupts}
        return {INTERRUPT: interrupts}

    def _snapshot(self, snap: StateSnapshot) -> StateSnapshot:
        tasks = tuple(
            t._replace(result=t.result.get("output"))
            if t.name == self.entry_name and isinstance(t.result, dict)
            else t
            for t in snap.tasks
        )
        return snap._replace(values=(snap.values or {}).get("output"), tasks=tasks)

    # -- running ---------------------------------------------------------------------------------

    async def astream(  # type: ignore[override]
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamMode | Sequence[StreamMode] | None = None,
        subgraphs: bool = False,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Run the entrypoint, yielding events as LangGraph's functional API does."""
        modes, single = _modes(stream_mode)
        inner = [*modes, *(m for m in ("updates", "values", "custom") if m not in modes)]
        replay_first = input is None or (isinstance(input, Command) and input.resume is not None)
        first, fresh = True, False
        stream = super().astream(
            self._wrap_input(input), config, stream_mode=inner, subgraphs=subgraphs, **kwargs
        )
        async for event in stream:
            ns, mode, chunk = event if subgraphs else ((), *event)
            out: Any = chunk
            keep = True
            if mode == "custom" and isinstance(chunk, _TaskUpdate):
                mode, out = "updates", {chunk.name: chunk.value}
            elif ns:
                pass  # events of a graph run inside this one: as that graph streamed them
            elif mode == "updates" and self.entry_name in chunk:
                fresh = True
                update = chunk[self.entry_name]
                out = {self.entry_name: update.get("output") if update else None}
            elif mode == "values":
                if INTERRUPT in chunk:
                    out = self._paused(chunk.get("output"), chunk[INTERRUPT])
                else:
                    # Like LangGraph: the value after the entrypoint returned, and the current
                    # value when a run continues a thread; not the state after new input.
                    keep = fresh or (first and replay_first)
                    out = chunk.get("output")
                fresh = False
            first = False
            if not keep or mode not in modes:
                continue
            if subgraphs:
                yield (ns, out) if single else (ns, mode, out)
            else:
                yield out if single else (mode, out)

    async def ainvoke(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamMode = "values",
        **kwargs: Any,
    ) -> Any:
        """Run to the end (or the next pause) and return the entrypoint's return value.

        When the run paused, returns `{"__interrupt__": [...]}` (merged into the last return
        value when that is a dict, as LangGraph does). Called from inside a running node or
        entrypoint, it runs as a subgraph of it.
        """
        pad = _in_node(config)
        if pad is not None and stream_mode == "values":
            return (await run_subgraph(self, self._wrap_input(input), pad)).get("output")
        if stream_mode != "values":
            return [c async for c in self.astream(input, config, stream_mode=stream_mode, **kwargs)]
        kwargs.pop("subgraphs", None)
        latest: Any = None
        interrupts: list[Any] = []
        stream = super().astream(
            self._wrap_input(input), config, stream_mode=["values", "updates"], **kwargs
        )
        async for mode, chunk in stream:
            if mode == "values" and INTERRUPT not in chunk:
                latest = chunk.get("output")
            elif mode == "updates" and INTERRUPT in chunk:
                interrupts.extend(chunk[INTERRUPT])
        if interrupts:
            return self._paused(latest, interrupts)
        return latest

    def invoke(self, input: Any, config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Synchronous `ainvoke()`; inside a sync node or entrypoint it runs as a subgraph."""
        pad = _in_node(config)
        if pad is not None:
            out = anyio.from_thread.run(run_subgraph, self, self._wrap_input(input), pad)
            return out.get("output")
        return super().invoke(input, config, **kwargs)

    # -- state -----------------------------------------------------------------------------------

    async def aget_state(self, config: dict[str, Any], *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state; `values` is the entrypoint's last return value (None before)."""
        return self._snapshot(await super().aget_state(config, subgraphs=subgraphs))

    async def aget_state_history(  # type: ignore[override]
        self,
        config: dict[str, Any],
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[StateSnapshot]:
        """The thread's checkpoints, newest first, with values mapped as in `aget_state()`."""
        async for snap in super().aget_state_history(
            config, filter=filter, before=before, limit=limit
        ):
            yield self._snapshot(snap)

    async def aupdate_state(
        self, config: dict[str, Any], values: Any, as_node: str | None = None
    ) -> dict[str, Any]:
        """Set the thread's value: what `get_state()` shows and the next run's `previous`."""
        return await super().aupdate_state(config, {"output": values, "previous": values}, as_node)


class entrypoint:
    """Decorator making a function a workflow: `@entrypoint(checkpointer=InMemorySaver())`.

    The function takes one input (any value) and may take `previous` (the value this thread's
    last run returned or saved), `config`, `writer`, `runtime` and `store` as keyword
    parameters. It returns a compiled `EntrypointGraph`, named after the function in its stream
    events. `cache` is accepted and ignored; `cache_policy` and `timeout` are not supported.
    """

    @dataclass(frozen=True, slots=True)
    class final(Generic[T, S]):
        """Return `value` to the caller but keep `save` as the next run's `previous`."""

        value: T
        save: S

    def __init__(
        self,
        checkpointer: BaseSaver | None = None,
        store: Any | None = None,
        cache: Any | None = None,
        context_schema: Any | None = None,
        cache_policy: Any | None = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        timeout: Any | None = None,
    ) -> None:
        if checkpointer is not None and inspect.isfunction(checkpointer):
            raise TypeError(
                "entrypoint is used with arguments: write @entrypoint() or "
                "@entrypoint(checkpointer=InMemorySaver()), not @entrypoint"
            )
        if cache_policy is not None or timeout is not None:
            raise NotImplementedError("entrypoint(cache_policy=..., timeout=...) is not supported")
        self.checkpointer = checkpointer
        self.store = store
        self.cache = cache
        self.context_schema = context_schema
        self.retry_policy = retry_policy

    def __call__(self, func: Callable[..., Any]) -> EntrypointGraph:
        name = getattr(func, "__name__", None)
        if not isinstance(name, str):
            raise TypeError(f"@entrypoint needs a named function, got {func!r}")
        node = _entry_node(func)
        builder = StateGraph(_EntrypointState, self.context_schema)
        builder.add_node(name, node, retry_policy=self.retry_policy)
        builder.add_edge(START, name)
        builder.add_edge(name, END)
        builder.validate()
        builder.compiled = True
        graph = EntrypointGraph(
            builder,
            checkpointer=self.checkpointer,
            interrupt_before=None,
            interrupt_after=None,
            name="LangGraph",
            store=self.store,
        )
        graph.entry_name = name
        return graph


def _entry_node(func: Callable[..., Any]) -> Callable[[Any], Awaitable[dict[str, Any]]]:
    """The graph node that runs `func`, with task calls numbered and run concurrently."""
    params = inspect.signature(func).parameters
    is_async = _is_async(func)

    async def node(state: dict[str, Any]) -> dict[str, Any]:
        pad = current_scratchpad("entrypoint")
        # The function's own interrupts are answered by id only: answers by position would
        # shift when a kept task call no longer raises the interrupts it raised before.
        body = dataclasses.replace(pad, resume=[], counter=0)
        kwargs: dict[str, Any] = {}
        if "previous" in params:
            kwargs["previous"] = state.get("previous")
        if "config" in params:
            kwargs["config"] = pad.config
        if "writer" in params:
            kwargs["writer"] = pad.writer
        if "runtime" in params and pad.run is not None:
            runtime = pad.run.runtime_for(pad.writer)
            kwargs["runtime"] = dataclasses.replace(runtime, previous=state.get("previous"))
        if "store" in params:
            kwargs["store"] = pad.run.graph.store if pad.run is not None else None
        call = functools.partial(func, state.get("input"), **kwargs)
        error: Exception | None = None
        value: Any = None
        async with anyio.create_task_group() as tg:
            attempt = _Attempt(pad, tg, threading.get_ident())
            token = set_scratchpad(body)
            caller = _CALLER.set(_Caller(attempt, body, nested=False))
            try:
                value = await call() if is_async else await anyio.to_thread.run_sync(call)
            except Exception as exc:
                # Task calls still running finish first (their results are kept), as LangGraph.
                error = exc
            finally:
                _CALLER.reset(caller)
                reset_scratchpad(token)
        if error is not None:
            # A run cancelled while a sync function waited on a task stops as cancelled.
            await anyio.lowlevel.checkpoint_if_cancelled()
        if isinstance(error, GraphInterrupt):
            # Pause on every interrupt raised meanwhile, so each can be answered by id.
            found = {i.id: i for i in error.interrupts}
            for gi in attempt.interrupted:
                found.update((i.id, i) for i in gi.interrupts if i.id not in found)
            raise GraphInterrupt(list(found.values())) from None
        if error is not None:
            raise error
        if isinstance(value, entrypoint.final):
            return {"output": value.value, "previous": value.save}
        return {"output": value, "previous": value}

    node.__name__ = getattr(func, "__name__", "entrypoint")
    return node
