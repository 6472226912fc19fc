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
import inspect
import typing
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
from typing_extensions import TypedDict

from hitl_async import _sync
from hitl_async._events import parse_stream_mode
from hitl_async._execution import call_body
from hitl_async._node_policies import apply_node_policies
from hitl_async._runtime import current_scratchpad, reset_scratchpad, set_scratchpad
from hitl_async._subgraph import calling_task, run_subgraph
from hitl_async._task_calls import (
    CALLER,
    Caller,
    TaskCalls,
    TaskFuture,
    TaskUpdate,
    task,
)
from hitl_async._timeouts import check_timeout, coerce_timeout
from hitl_async.cache.store import as_cache
from hitl_async.constants import END, INTERRUPT, START
from hitl_async.errors import GeneratorNotSupportedError, GraphInterrupt
from hitl_async.graph.compiled import CompiledStateGraph
from hitl_async.graph.drawing import DrawableGraph, Edge, Node
from hitl_async.graph.state import StateGraph, is_async_callable
from hitl_async.serde.serializer import register_types_from_signature
from hitl_async.types import CachePolicy, Command, RetryPolicy, StateSnapshot, TimeoutPolicy

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import BaseSaver
    from hitl_async.types import StreamMode

__all__ = ["EntrypointGraph", "TaskFuture", "entrypoint", "task"]

T = TypeVar("T")
S = TypeVar("S")


class _EntrypointState(TypedDict, total=False):
    """The entrypoint graph's channels; `previous` is what the next run sees as `previous`."""

    input: Any
    output: Any
    previous: Any


# -- @entrypoint ----------------------------------------------------------------------------------


class _EntrypointBuilder(StateGraph):
    """The builder of an entrypoint's graph: its one node is triggered by the input itself."""

    def triggers_of(self, node: str) -> tuple[str, ...]:
        """`__start__`, as LangGraph lists an entrypoint's trigger (`langgraph_triggers`)."""
        return (START,)


class EntrypointGraph(CompiledStateGraph):
    """The compiled form of an `@entrypoint` function: a graph whose state is its return value.

    Streams `{task_name: result}` per task call and `{entrypoint_name: return_value}`;
    `invoke()` returns the return value, `get_state().values` is the last one.
    """

    entry_name: str
    entry_func: Callable[..., Any] | None = None

    # -- schemas ---------------------------------------------------------------------------------

    def get_input_jsonschema(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON schema of the function's input (its first parameter's annotation)."""
        return _annotation_schema(self._io_hints()[0], self.get_name("Input"))

    def get_output_jsonschema(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON schema of what the function returns (`entrypoint.final[R, S]`: of R)."""
        return _annotation_schema(self._io_hints()[1], self.get_name("Output"))

    def _io_hints(self) -> tuple[Any, Any]:
        if self.entry_func is None:
            return Any, Any
        try:
            hints = typing.get_type_hints(self.entry_func)
        except Exception:  # (an annotation that does not resolve here)
            return Any, Any
        params = list(inspect.signature(self.entry_func).parameters)
        out = hints.get("return", Any)
        if out is entrypoint.final:  # unparameterized: final[Any, Any]
            out = Any
        elif typing.get_origin(out) is entrypoint.final:
            out = typing.get_args(out)[0]
        return (hints.get(params[0], Any) if params else Any), out

    def get_graph(self, config: Any = None, *, xray: bool | int = False) -> DrawableGraph:
        """The picture LangGraph draws of an entrypoint: START (bare) into the function's node,
        which may end the run (a dotted edge to END)."""
        name = self.entry_name
        nodes = {
            name: Node(name, name, self.entry_func, None),
            START: Node(START, START, None, None),
            END: Node(END, END, None, None),
        }
        return DrawableGraph(self.name, nodes, [Edge(START, name), Edge(name, END, None, True)])

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

    def _payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A `tasks`/`checkpoints` payload as LangGraph's functional API shows it: a
        checkpoint's values are the entrypoint's return value, the entrypoint's task takes the
        input as given (triggered by `__start__`) and its result is `{"__end__": value}`."""
        if "values" in payload and "next" in payload:  # a checkpoint
            return {**payload, "values": (payload["values"] or {}).get("output")}
        if payload.get("name") != self.entry_name:
            return payload
        if "triggers" in payload:  # the entrypoint's task starts
            given = payload["input"]
            return {
                **payload,
                "input": given.get("input") if isinstance(given, dict) else given,
                "triggers": (START,),
            }
        result = payload.get("result")
        if isinstance(result, dict) and "output" in result:
            return {**payload, "result": {END: result["output"]}}
        return payload

    # -- running ---------------------------------------------------------------------------------

    async def _stream_batches(
        self,
        input: Any,
        config: dict[str, Any] | None,
        *,
        stream_mode: StreamMode | Sequence[StreamMode] | None = None,
        subgraphs: bool = False,
        **kwargs: Any,
    ) -> AsyncGenerator[list[Any], None]:
        """The entrypoint's stream, in batches, as LangGraph's functional API streams it."""
        modes, single = parse_stream_mode(stream_mode)
        inner: list[Any] = [*modes, *(m for m in ("updates", "values", "custom") if m not in modes)]
        replay_first = input is None or (isinstance(input, Command) and input.resume is not None)
        first, fresh = True, False

        def shape(event: Any) -> tuple[bool, Any]:
            """Whether the caller sees `event`, and as what."""
            nonlocal first, fresh
            ns, mode, chunk = event if subgraphs else ((), *event)
            out: Any = chunk
            keep = True
            if mode == "custom" and isinstance(chunk, TaskUpdate):
                mode, out = "updates", {chunk.name: chunk.value}
                if chunk.cached:
                    out["__metadata__"] = {"cached": True}
            elif ns:
                pass  # events of a graph run inside this one: as that graph streamed them
            elif mode in ("tasks", "checkpoints"):
                out = self._payload(chunk)
            elif mode == "debug":
                out = {**chunk, "payload": self._payload(chunk["payload"])}
            elif mode == "updates" and self.entry_name in chunk:
                fresh = True
                update = chunk[self.entry_name]
                out = {self.entry_name: update.get("output") if update else None}
                if "__metadata__" in chunk:  # (the workflow's result came from its cache)
                    out["__metadata__"] = chunk["__metadata__"]
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
                return False, None
            if subgraphs:
                return True, ((ns, out) if single else (ns, mode, out))
            return True, (out if single else (mode, out))

        batches = super()._stream_batches(
            self._wrap_input(input), config, stream_mode=inner, subgraphs=subgraphs, **kwargs
        )
        async with aclosing(batches):
            async for batch in batches:
                out = [item for keep, item in map(shape, batch) if keep]
                if out:
                    yield out

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
        pad = calling_task(config)
        if pad is not None and stream_mode == "values":
            return (await run_subgraph(self, self._wrap_input(input), pad)).get("output")
        if stream_mode != "values":
            return await self._collect(input, config, stream_mode=stream_mode, **kwargs)
        kwargs.pop("subgraphs", None)
        latest: Any = None
        interrupts: list[Any] = []
        events: list[Any] = []
        raw = CompiledStateGraph._stream_batches(  # the graph's own events, not the entrypoint's
            self,
            self._wrap_input(input),
            config,
            stream_mode=["values", "updates"],
            live=False,
            **kwargs,
        )
        async for batch in raw:
            events += batch
        for mode, chunk in events:
            if mode == "values":  # at a pause: the value so far, as LangGraph returns it
                latest = chunk.get("output")
            elif mode == "updates" and INTERRUPT in chunk:
                interrupts.extend(chunk[INTERRUPT])
        if interrupts:
            return self._paused(latest, interrupts)
        return latest

    def invoke(self, input: Any, config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Synchronous `ainvoke()`; inside a sync node or entrypoint it runs as a subgraph."""
        pad = calling_task(config)
        if pad is not None:
            out = _sync.from_body(
                partial(run_subgraph, from_invoke=True), self, self._wrap_input(input), pad
            )
            return out.get("output")
        return super().invoke(input, config, **kwargs)

    # -- state -----------------------------------------------------------------------------------

    async def aget_state(self, config: dict[str, Any], *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state; `values` is the entrypoint's last return value (None before)."""
        return self._snapshot(await super().aget_state(config, subgraphs=subgraphs))

    async def aget_state_history(
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
        self,
        config: dict[str, Any],
        values: Any,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """Set the thread's value: what `get_state()` shows and the next run's `previous`."""
        wrapped = {"output": values, "previous": values}
        return await super().aupdate_state(config, wrapped, as_node, task_id)


class entrypoint:
    """Decorator making a function a workflow: `@entrypoint(checkpointer=InMemorySaver())`.

    The function takes one input (any value) and may take `previous` (the value this thread's
    last run returned or saved), `config`, `writer`, `runtime` and `store` as keyword
    parameters. It returns a compiled `EntrypointGraph`, named after the function in its stream
    events. `cache` holds the results of `@task(cache_policy=...)` calls and, with
    `cache_policy`, of the workflow itself (keyed on its input, shared by threads); `timeout`
    limits each attempt of an async workflow (see `add_node(timeout=...)`).
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
        cache_policy: CachePolicy | None = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
    ) -> None:
        given: object = checkpointer  # `@entrypoint` without parentheses passes the function
        if inspect.isfunction(given):
            raise TypeError(
                "entrypoint is used with arguments: write @entrypoint() or "
                "@entrypoint(checkpointer=InMemorySaver()), not @entrypoint"
            )
        self.timeout = coerce_timeout(timeout, "entrypoint")
        self.checkpointer = checkpointer
        self.store = store
        self.cache = cache
        self.context_schema = context_schema
        self.retry_policy = retry_policy
        self.cache_policy = cache_policy

    def __call__(self, func: Callable[..., Any]) -> EntrypointGraph:
        name = getattr(func, "__name__", None)
        if not isinstance(name, str):
            raise TypeError(f"@entrypoint needs a named function, got {func!r}")
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise GeneratorNotSupportedError(name)
        check_timeout(name, is_async_callable(func), self.timeout)
        node = _entry_node(func)
        register_types_from_signature(func)  # its input, output and saved value are stored
        builder = _EntrypointBuilder(_EntrypointState, self.context_schema)
        builder.add_node(
            name,
            node,
            retry_policy=self.retry_policy,
            cache_policy=_on_input(self.cache_policy),
            timeout=self.timeout,
        )
        builder.nodes[name] = dataclasses.replace(
            builder.nodes[name], traced_io=(_traced_input, _traced_output)
        )
        builder.add_edge(START, name)
        builder.add_edge(name, END)
        if self.timeout is not None:
            apply_node_policies(builder)
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
        graph.entry_func = func
        graph.cache = as_cache(self.cache, graph.serde)  # (for @task(cache_policy=...) calls)
        return graph


def _annotation_schema(annotation: Any, title: str) -> dict[str, Any]:
    """The JSON schema pydantic gives an annotation, titled as LangGraph titles it."""
    from pydantic import TypeAdapter

    try:
        found: dict[str, Any] = TypeAdapter(annotation).json_schema()
    except Exception:  # a type pydantic cannot describe: any value
        found = {}
    return {"title": title, **found} if "title" not in found else found


def _on_input(policy: CachePolicy | None) -> CachePolicy | None:
    """The entrypoint node's cache policy: keyed on the workflow's input alone, as LangGraph
    keys it (not on `previous`, so a cached result serves every thread)."""
    if policy is None:
        return None
    key_func = policy.key_func
    return CachePolicy(key_func=lambda state: key_func(state.get("input")), ttl=policy.ttl)


def _traced_input(state: Any) -> Any:
    """What the entrypoint's chain run shows as its input: the function's, as LangGraph's."""
    return state.get("input") if isinstance(state, dict) else state


def _traced_output(update: Any) -> Any:
    """What the entrypoint's chain run shows as its output: what the function returned."""
    return update.get("output") if isinstance(update, dict) else update


def _entry_node(func: Callable[..., Any]) -> Callable[[Any], Awaitable[dict[str, Any]]]:
    """The graph node that runs `func`, with task calls numbered and run concurrently."""
    params = inspect.signature(func).parameters
    is_async = is_async_callable(func)

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
            runtime = pad.run.runtime_for(pad.writer, pad.heartbeat, pad)
            kwargs["runtime"] = dataclasses.replace(runtime, previous=state.get("previous"))
        if "store" in params:
            kwargs["store"] = pad.run.graph.store if pad.run is not None else None
        events = pad.run.events if pad.run is not None else None
        error: Exception | None = None
        value: Any = None
        async with anyio.create_task_group() as tg:
            attempt = TaskCalls(pad, tg)
            token = set_scratchpad(body)
            caller = CALLER.set(Caller(attempt, body, nested=False))
            try:
                value = await call_body(func, is_async, (state.get("input"),), kwargs, events)
            except Exception as exc:
                # Task calls still running finish first (their results are kept), as LangGraph.
                error = exc
            finally:
                CALLER.reset(caller)
                reset_scratchpad(token)
        if error is not None:
            # A run cancelled while a sync function waited on a task stops as cancelled.
            await anyio.lowlevel.checkpoint_if_cancelled()
        if isinstance(error, GraphInterrupt):
            # Pause on every interrupt raised meanwhile, so each can be answered by id.
            found = {i.id: i for i in error.interrupts}
            for _, gi in sorted(attempt.interrupted.items()):
                found.update((i.id, i) for i in gi.interrupts if i.id not in found)
            pause = GraphInterrupt(list(found.values()))
            pause.reruns = error.reruns or any(gi.reruns for gi in attempt.interrupted.values())
            raise pause from None
        if error is not None:
            raise error
        if isinstance(value, entrypoint.final):
            return {"output": value.value, "previous": value.save}
        return {"output": value, "previous": value}

    node.__name__ = getattr(func, "__name__", "entrypoint")
    # Its identity is the function's: the cache namespace of its results names it.
    node.__qualname__ = getattr(func, "__qualname__", node.__name__)
    node.__module__ = getattr(func, "__module__", None) or node.__module__
    return node
