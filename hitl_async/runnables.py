"""LangChain interop for nodes: Runnables as nodes, and the LangChain-compatible config a task
runs with (`configurable`, `callbacks`, `tags`, `metadata` with LangGraph's `langgraph_*` keys).

Nothing here needs langchain-core to import: any object with `invoke`/`ainvoke` is a node, and
the callback parts import langchain-core only when the run has LangChain callbacks.

The engine-facing interface is narrow: `TaskInfo` (what a task is: node, step, path, ...),
`task_info(pad)` (read from the engine's scratchpad), `langchain_config(config, info)` and the
`task_scope(config, info, inputs)` context manager, which runs a task as a LangChain chain run
(so a chat model `.invoke()`d inside a node sees the run's callbacks and metadata through
langchain-core's context variable, as in LangGraph).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from hitl_async.constants import PULL, PUSH

__all__ = [
    "GraphScope",
    "RunnableNode",
    "ScopeHandle",
    "SupportsInvoke",
    "TaskInfo",
    "call_in_scope",
    "graph_scope",
    "is_runnable",
    "langchain_config",
    "merge_configs",
    "needs_scope",
    "node_config",
    "task_info",
    "task_scope",
]

_RESERVED_CONFIG = ("callbacks", "tags", "metadata", "run_name", "run_id")
GRAPH_RUN_OPEN = "__hitl_graph_run_open__"
"""Config key set when the graph's own chain run is already open (`astream_events` opens it):
the run does not open another."""
NODE_OUTPUT_SINK = "__hitl_node_output_sink__"
"""Config key of a callable `(metadata, inputs, output)` told every node's output when the run
has no LangChain callbacks (the `messages` stream without langchain-core)."""


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """What a task is, in LangGraph's terms (the `langgraph_*` metadata keys)."""

    node: str
    step: int
    task_id: str
    checkpoint_ns: str
    """The task's own namespace: the graph's namespace plus `node:task_id`."""
    thread_id: str | None = None
    path: tuple[Any, ...] = ()
    triggers: tuple[str, ...] = ()

    def metadata(self) -> dict[str, Any]:
        """LangGraph's per-task run metadata."""
        path = self.path or (PULL, self.node)
        triggers = self.triggers or ((PUSH,) if path[0] == PUSH else (f"branch:to:{self.node}",))
        out: dict[str, Any] = {} if self.thread_id is None else {"thread_id": self.thread_id}
        out.update(
            langgraph_step=self.step,
            langgraph_node=self.node,
            langgraph_triggers=triggers,
            langgraph_path=path,
            langgraph_checkpoint_ns=self.checkpoint_ns,
        )
        return out


def task_info(pad: Any) -> TaskInfo:
    """The `TaskInfo` of the task whose scratchpad is `pad` (see `hitl_async._runtime`).

    The engine may put `path` and `step` in `pad.extras`; otherwise they are derived from the
    run (the step after its current checkpoint's) and a pull task is assumed.
    """
    run = pad.run
    extras = getattr(pad, "extras", None) or {}
    step = extras.get("step")
    if step is None:
        cp = getattr(run, "cp", None)
        step = getattr(cp, "step", -1) + 1
    ns = getattr(run, "ns", "") or ""
    own = f"{pad.node}:{pad.task_id}"
    return TaskInfo(
        node=pad.node,
        step=step,
        task_id=pad.task_id,
        checkpoint_ns=f"{ns}|{own}" if ns else own,
        thread_id=getattr(run, "thread_id", None),
        path=tuple(extras.get("path") or ()),
        triggers=_pull_triggers(run, pad.node, extras.get("path")),
    )


def _pull_triggers(run: Any, node: str, path: Any) -> tuple[str, ...]:
    """A pull task's triggers as its graph lists them (empty: left to `TaskInfo.metadata`)."""
    builder = getattr(getattr(run, "graph", None), "builder", None)
    if builder is None or (path and path[0] != PULL) or node not in builder.nodes:
        return ()
    return tuple(builder.triggers_of(node))


_PROPAGATED = (
    "thread_id",
    "checkpoint_id",
    "checkpoint_ns",
    "task_id",
    "run_id",
    "assistant_id",
    "graph_id",
)


def _run_metadata(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run's metadata plus the `configurable` keys LangGraph copies into it (thread,
    checkpoint, task, run, assistant and graph ids; a key already in `metadata` wins)."""
    metadata = dict(config.get("metadata") or {})
    conf = config.get("configurable") or {}
    for key in _PROPAGATED:
        if key not in metadata and conf.get(key):
            metadata[key] = conf[key]
    return metadata


def langchain_config(config: Mapping[str, Any], info: TaskInfo) -> dict[str, Any]:
    """The config a node or Runnable of task `info` receives: the run's config (its
    `configurable`, `callbacks`, `tags`, `metadata`, `recursion_limit`, ...) with LangGraph's
    per-task metadata keys added; `run_name`/`run_id` belong to the run and are dropped."""
    out = {
        k: v
        for k, v in config.items()
        if k not in _RESERVED_CONFIG and k != NODE_OUTPUT_SINK and k != GRAPH_RUN_OPEN
    }
    out["metadata"] = {**_run_metadata(config), **info.metadata()}
    out["tags"] = list(config.get("tags") or ())
    if config.get("callbacks") is not None:
        out["callbacks"] = config["callbacks"]
    # The task's own namespace, as LangGraph gives a node (langchain-core copies it into the
    # metadata of what the node calls, e.g. a chat model's `messages` tokens).
    out["configurable"] = {
        **(config.get("configurable") or {}),
        "checkpoint_ns": info.checkpoint_ns,
    }
    return out


@contextlib.contextmanager
def task_scope(
    config: Mapping[str, Any],
    info: TaskInfo,
    inputs: Any,
    *,
    tap: bool = True,
    step_tag: bool = True,
) -> Iterator[ScopeHandle]:
    """Run task `info` as a LangChain chain run named after its node (when the run has
    callbacks and langchain-core is installed): callbacks see `on_chain_start`/`_end`/`_error`
    with the task's metadata, and code inside (a chat model's `.invoke()`) inherits the child
    config through langchain-core's context variable. Yields a handle whose `config` is what
    the node should receive and whose `end(output)` reports the node's output (`tap`: also as
    an event stream's chunk, as a streaming LangGraph run does). `step_tag`: tagged
    `graph:step:N`, as LangGraph tags a node's run (not a `@task` call's)."""
    base = langchain_config(config, info)
    if base.get("callbacks") is None:
        sink = config.get(NODE_OUTPUT_SINK)
        handle = ScopeHandle(base, None, info.task_id)
        scope_token = _SCOPE.set(handle)
        try:
            yield handle
        finally:
            _SCOPE.reset(scope_token)
        if sink is not None and handle.ended:
            sink(base["metadata"], inputs, handle.output)
        return
    from langchain_core.callbacks.manager import CallbackManager
    from langchain_core.runnables.config import var_child_runnable_config

    manager = CallbackManager.configure(
        inheritable_callbacks=base["callbacks"],
        inheritable_tags=base["tags"],
        local_tags=[f"graph:step:{info.step}"] if step_tag else None,
        inheritable_metadata=base["metadata"],
    )
    run = manager.on_chain_start(None, inputs, name=info.node)
    child = {**base, "callbacks": run.get_child("seq:step:1")}
    handle = ScopeHandle(child, run, info.task_id, tap=tap)
    token = var_child_runnable_config.set(child)  # type: ignore[arg-type]
    scope_token = _SCOPE.set(handle)
    try:
        yield handle
    except BaseException as exc:
        if not handle.ended:
            handle.ended = True
            run.on_chain_error(exc)
        raise
    finally:
        _SCOPE.reset(scope_token)
        var_child_runnable_config.reset(token)
    if not handle.ended:
        handle.end(None)


def open_graph_run(config: dict[str, Any], inputs: Any, name: str) -> tuple[dict[str, Any], Any]:
    """Open the chain run of a graph run called with LangChain callbacks (a tracer, LangSmith),
    as LangGraph does: the config the run goes on with (its tasks' runs are children of this
    one) and the run manager to end (`on_chain_end`/`_error`); `(config, None)` without
    callbacks or when `astream_events` opened it already."""
    if config.get("callbacks") is None or config.get(GRAPH_RUN_OPEN):
        return config, None
    from langchain_core.callbacks.manager import CallbackManager

    manager = CallbackManager.configure(
        inheritable_callbacks=config["callbacks"],
        inheritable_tags=config.get("tags"),
        inheritable_metadata=config.get("metadata"),
    )
    run = manager.on_chain_start(
        None, inputs, name=config.get("run_name") or name, run_id=config.get("run_id")
    )
    return {**config, "callbacks": run.get_child(), GRAPH_RUN_OPEN: True}, run


def node_config(pad: Any) -> dict[str, Any]:
    """The config the task of scratchpad `pad` sees (a node's `config` parameter,
    `get_config()`): the run's config with LangGraph's per-task `metadata` and `tags`, the
    chain run's child config when the task runs in a `task_scope`."""
    handle = _SCOPE.get()
    if handle is not None and handle.task_id == pad.task_id:
        return handle.config
    return langchain_config(pad.config, task_info(pad))


class GraphScope:
    """A subgraph's LangChain chain run while it runs inside a task (see `graph_scope`)."""

    def __init__(self, run: Any) -> None:
        self._run = run
        self.callbacks = run.get_child()
        """The callbacks the subgraph's own tasks run under (children of this run)."""

    def end(self, output: Any) -> None:
        """Report the subgraph's output (`on_chain_end`)."""
        self._run.on_chain_end(output)

    def fail(self, error: BaseException) -> None:
        """Report that the subgraph stopped on `error` (an interrupt included)."""
        self._run.on_chain_error(error)


def graph_scope(task_id: str, name: str, inputs: Any) -> GraphScope | None:
    """Open the chain run of a subgraph `name` called by task `task_id`, as a child of the
    task's own chain run (LangGraph's tree: node → subgraph → its nodes); None when the task
    runs without LangChain callbacks."""
    handle = _SCOPE.get()
    if handle is None or handle._run is None or handle.task_id != task_id:
        return None
    from langchain_core.callbacks.manager import CallbackManager

    manager = CallbackManager.configure(inheritable_callbacks=handle.config["callbacks"])
    return GraphScope(manager.on_chain_start(None, inputs, name=name))


def call_scope_config(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """For a `@task` call with config `config`: the config its own chain run starts from, a
    child of the calling task's run (LangGraph traces each call, named after the task, inside
    the node or task that made it); None when the run has no LangChain callbacks."""
    handle = _SCOPE.get()
    if handle is not None and handle._run is not None:
        return {**config, "callbacks": handle.config["callbacks"]}
    return dict(config) if config.get("callbacks") is not None else None


def needs_scope(config: Mapping[str, Any]) -> bool:
    """Whether a task of a run with `config` runs in a `task_scope` (the run has LangChain
    callbacks, e.g. the `messages` stream handler); cheap enough for every task."""
    return config.get("callbacks") is not None or NODE_OUTPUT_SINK in config


async def call_in_scope(
    config: Mapping[str, Any],
    pad: Any,
    inputs: Any,
    call: Callable[[dict[str, Any]], Awaitable[Any]],
    *,
    shown: Callable[[Any], Any] | None = None,
) -> Any:
    """`await call(task_config)` inside the task's `task_scope`, reporting its output (as
    `shown` gives it, if given): how the engine runs a node when `needs_scope(config)`."""
    tap = getattr(pad.run, "taps_outputs", True)
    with task_scope(config, task_info(pad), inputs, tap=tap) as scope:
        output = await call(scope.config)
        scope.end(output if shown is None else shown(output))
    return output


_SCOPE: ContextVar[ScopeHandle | None] = ContextVar("hitl_async_task_scope", default=None)


class ScopeHandle:
    """A task's LangChain run while it runs (see `task_scope`)."""

    def __init__(self, config: dict[str, Any], run: Any, task_id: str, *, tap: bool = True) -> None:
        self.config = config
        self._run = run
        self._tap = tap
        self.task_id = task_id
        self.ended = False
        self.output: Any = None

    def end(self, output: Any) -> None:
        """Report the node's output (`on_chain_end`), once."""
        if self._run is not None and not self.ended:
            for handler in self._run.handlers if self._tap else ():  # the output as a chunk
                tap = getattr(handler, "tap_output_iter", None)
                if tap is not None:
                    for _ in tap(self._run.run_id, iter([output])):
                        pass
            self._run.on_chain_end(output)
        self.ended = True
        self.output = output


# -- Runnables as nodes ---------------------------------------------------------------------------


class SupportsInvoke(Protocol):
    """A node used through `invoke(state, config)` (LangChain Runnables, ToolNode, ...);
    objects with only `ainvoke` work too."""

    def invoke(self, *args: Any, **kwargs: Any) -> Any: ...


def is_runnable(obj: Any) -> bool:
    """Whether `obj` is used through `invoke`/`ainvoke` (a LangChain Runnable, ToolNode, ...)
    rather than called: it has one of them and is not a plain function."""
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return False
    # Looked up on the class, so an object that answers any attribute (a unittest.mock.Mock
    # used as a node) is called, as LangGraph calls it, not taken for a Runnable.
    cls = type(obj)
    return any(
        inspect.getattr_static(cls, name, None) is not None for name in ("ainvoke", "invoke")
    )


class RunnableNode:
    """A node that runs `runnable.ainvoke(state, config)` (or `invoke` in a worker thread) with
    the task's LangChain-compatible config (see `langchain_config`)."""

    def __init__(self, runnable: Any) -> None:
        self.runnable = runnable
        self.name = getattr(runnable, "name", None) or type(runnable).__name__

    async def __call__(self, state: Any, config: dict[str, Any]) -> Any:
        from hitl_async._runtime import current_scratchpad

        pad = current_scratchpad("a Runnable node")
        current = _SCOPE.get()
        if current is not None and current.task_id == pad.task_id:  # the engine made one
            return await self._invoke(state, current.config)
        return await call_in_scope(config, pad, state, lambda cfg: self._invoke(state, cfg))

    async def _invoke(self, state: Any, config: dict[str, Any]) -> Any:
        ainvoke = getattr(self.runnable, "ainvoke", None)
        if callable(ainvoke):
            return await ainvoke(state, config)
        return await anyio.to_thread.run_sync(self.runnable.invoke, state, config)

    def __repr__(self) -> str:
        return f"RunnableNode({self.runnable!r})"


def merge_configs(*configs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Configs merged left to right as LangGraph merges a graph's `with_config` config with a
    call's: `configurable` and `metadata` key by key, `tags` and `callbacks` (lists) joined,
    anything else taken from the later config."""
    out: dict[str, Any] = {}
    for config in configs:
        for key, value in (config or {}).items():
            if value is None:
                continue
            if key in ("configurable", "metadata") and isinstance(value, Mapping):
                out[key] = {**out.get(key, {}), **value}
            elif key == "tags":
                out[key] = list(dict.fromkeys([*out.get(key, ()), *value]))
            elif key == "callbacks" and out.get(key) is not None:
                out[key] = _joined_callbacks(out[key], value)
            else:
                out[key] = value
    return out


def _joined_callbacks(first: Any, second: Any) -> Any:
    """Two `callbacks` values (a list of handlers or a LangChain callback manager) as one."""
    if isinstance(first, list) and isinstance(second, list):
        return [*first, *second]
    manager, handlers = (first, second) if isinstance(second, list) else (second, first)
    if not isinstance(handlers, list):  # two managers: the later one's handlers join
        manager, handlers = first, list(second.handlers)
    joined = manager.copy()
    for handler in handlers:
        joined.add_handler(handler, inherit=True)
    return joined
