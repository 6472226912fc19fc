"""Running one task: call the node (awaited, or in a worker thread if sync), retry per policy,
turn its return value into writes, and decide which nodes run next."""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from hitl_async._checkpoint import NULL_TASK, EngineCheckpoint, TaskSpec, task_id
from hitl_async._execution import call_body
from hitl_async._runtime import Scratchpad, reset_scratchpad, set_scratchpad
from hitl_async._schema import ROOT
from hitl_async._timeouts import send_timed
from hitl_async.constants import (
    DONE,
    END,
    ERROR,
    INTERRUPT,
    NEXT,
    PULL,
    PUSH,
    RESUME,
    START,
    TASK_RESULT,
    plain_name,
)
from hitl_async.errors import (
    CheckpointerRequiredError,
    GraphBubbleUp,
    GraphInterrupt,
    GraphValidationError,
    InvalidUpdateError,
    NodeCancelledError,
    NoParentGraphError,
    ParentCommand,
)
from hitl_async.managed.base import StepWindow, managed_values
from hitl_async.runnables import call_in_scope, needs_scope, node_config
from hitl_async.types import Command, Interrupt, RetryPolicy, Send

if TYPE_CHECKING:
    from hitl_async._graph_base import GraphBase
    from hitl_async.graph.state import BranchSpec, NodeSpec

__all__ = [
    "Task",
    "execute",
    "interrupt_row",
    "listed_order",
    "node_input",
    "own_input",
    "prepare_tasks",
    "raised_by_body",
    "retry_delay",
    "route",
    "task_result",
    "update_chunk",
]


@dataclass(slots=True)
class Task:
    """A task of the current superstep and everything known about it so far."""

    id: str
    index: int
    spec: TaskSpec
    writes: list[tuple[str, Any]] = field(default_factory=list)
    done: bool = False
    answers: dict[str, Any] = field(default_factory=dict)
    """Answers to this task's interrupts, by interrupt id, in the order they were given."""
    results: dict[int, Any] = field(default_factory=dict)
    call_writes: dict[int, list[tuple[str, Any]]] = field(default_factory=dict)
    """State writes of kept `@task` calls of a graph node (`push_ui_message` in one), by call
    index: applied again when a rerun of the node reuses the kept result."""
    raised: tuple[Interrupt, ...] | None = None
    """Interrupts of the task's last run (None: it did not pause; empty: a static pause)."""
    error: BaseException | None = None
    error_text: str | None = None
    update: Any = None
    finished_now: bool = False
    persisted: bool = False
    items: list[tuple[str, Any]] | None = None
    """The state writes among `writes` (None: not split out; `state_writes()` filters)."""
    cache_key: Any = None
    """(namespace, key) of the task's input when its node has a `CachePolicy` and a cache."""
    cached: bool = False
    """Its writes came from the cache: the node did not run."""
    reruns: bool = False
    """Paused by `NodeInterrupt`: nothing answers it; the node reruns when the thread goes on."""

    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.spec.node

    def state_writes(self) -> list[tuple[str, Any]]:
        """The task's writes to state keys (not its routing)."""
        if self.items is not None:
            return self.items
        return [w for w in self.writes if w[0][:2] != "__"]

    @property
    def resume(self) -> list[Any]:
        """Answers in the order given: the n-th `interrupt()` call of the node gets the n-th."""
        return list(self.answers.values())

    @property
    def pending(self) -> tuple[Interrupt, ...]:
        """Interrupts raised by the task that have no answer yet."""
        if self.done or not self.raised:
            return ()
        return tuple(i for i in self.raised if i.id not in self.answers)

    @property
    def waiting(self) -> bool:
        """Paused on interrupts none of which has been answered: rerunning would pause again."""
        if self.reruns or self.done or not self.raised:
            return False
        return len(self.pending) == len(self.raised)

    @property
    def path(self) -> tuple[Any, ...]:
        """LangGraph's task path: `(PUSH, index, False)` of a `Send`, else `(PULL, name)`."""
        if self.spec.push and self.name != START:
            return (PUSH, self.index, False)
        return (PULL, self.name)


RERUNS = "__reruns__"
"""Last item of a `NodeInterrupt` pause's stored interrupts (see `interrupt_row`)."""


def interrupt_row(t: Task) -> list[Any]:
    """The stored form of a paused task's interrupts: they, then `RERUNS` when a
    `NodeInterrupt` raised them (so a reload knows the node runs again)."""
    raised = list(t.raised or ())
    return [*raised, RERUNS] if t.reruns else raised


def listed_order(tasks: Iterable[Task], nodes: Iterable[str]) -> list[Task]:
    """Tasks of a loaded checkpoint as LangGraph lists them: `Send`s, then nodes in graph order."""
    order = {name: i for i, name in enumerate(nodes)}
    return sorted(tasks, key=lambda t: (not t.spec.push, order.get(t.name, -1), t.index))


def prepare_tasks(cp: EngineCheckpoint, checkpoint_ns: str) -> list[Task]:
    """The tasks of the step that runs from `cp`, with what each already wrote (done, paused on
    interrupts, answered, failed, kept `@task` results)."""
    specs = list(cp.tasks)
    for _, channel, value in cp.writes.get(NULL_TASK, ()):
        if channel != NEXT:
            continue
        if isinstance(value, Send):
            specs.append(TaskSpec(value.node, True, value.arg, value.timeout))
        elif all(s.push or s.node != value for s in specs):
            specs.append(TaskSpec(value))
    tasks = []
    for i, spec in enumerate(specs):
        t = Task(task_id(cp.checkpoint_id, checkpoint_ns, i, spec.node), i, spec)
        for _, channel, value in cp.writes.get(t.id, ()):
            if channel == DONE:
                t.done = t.persisted = True
            elif channel == INTERRUPT:
                t.raised = tuple(i for i in value if not isinstance(i, str))
                t.reruns = RERUNS in value
            elif channel == RESUME:
                t.answers = dict(value)
            elif channel == ERROR:
                t.error_text = value
            elif channel == TASK_RESULT:  # (index, result[, state writes])
                t.results[value[0]] = value[1]
                if len(value) > 2:
                    t.call_writes[value[0]] = [tuple(w) for w in value[2]]
            else:
                t.writes.append((channel, value))
        if t.done and t.name != START:
            t.update = update_chunk([(c, v) for c, v in t.writes if c[:2] != "__"])
        tasks.append(t)
    return tasks


def _is_command_list(result: Any) -> bool:
    """A node's list of updates and `Command`s (LangGraph: a list with at least one Command;
    each item applies in order, every Command's `goto` is followed)."""
    return (
        isinstance(result, (list, tuple))
        and bool(result)
        and any(isinstance(r, Command) for r in result)
    )


def _refuse_plain_list(graph: GraphBase, node: str, result: Any) -> None:
    """A node's list or tuple with no `Command` in it (`[]` included) is not an update, as in
    LangGraph (`InvalidUpdateError`), unless the state is a root schema (the list is the value)."""
    if graph.builder.schema.kind != "root":
        raise InvalidUpdateError(
            f"node {node!r} returned {type(result).__name__} {result!r}; expected a dict of "
            "state updates, None, a Command, or a list holding at least one Command"
        )


def update_chunk(items: list[tuple[str, Any]]) -> Any:
    """A task's writes as its `updates` stream event shows them: a dict of the keys written, or,
    when a key was written more than once (a list of updates), one dict per write, in order;
    None when nothing was written. A root-schema state shows the written value(s)."""
    if not items:
        return None
    if items[0][0] == ROOT:
        return items[0][1] if len(items) == 1 else [v for _, v in items]
    chunk = dict(items)
    if len(chunk) < len(items):
        return [{k: v} for k, v in items]
    return chunk


def task_result(writes: Iterable[tuple[str, Any]], *, root: bool = False) -> Any:
    """A finished task's writes as `PregelTask.result` shows them (LangGraph's rule): each key
    written once maps to its value, a key written several times to `{"$writes": [...]}`
    (`{}`: nothing written); a root-schema state shows the value (None: nothing written)."""
    result: dict[str, Any] = {}
    for key, value in writes:
        if key[:2] == "__":
            continue
        if key in result:
            old = result[key]
            if isinstance(old, dict) and isinstance(old.get("$writes"), list) and len(old) == 1:
                old["$writes"].append(value)
            else:
                result[key] = {"$writes": [old, value]}
        else:
            result[key] = value
    if root:
        return result.get(ROOT)
    return result


async def _call(node: NodeSpec, arg: Any, pad: Scratchpad, fn: Callable[..., Any]) -> Any:
    if needs_scope(pad.config):  # LangChain callbacks: the node runs as a chain run
        call = partial(_call_with, node, arg, pad, fn)
        if node.traced_io is None:
            return await call_in_scope(pad.config, pad, arg, call)
        shown_input, shown_output = node.traced_io
        return await call_in_scope(pad.config, pad, shown_input(arg), call, shown=shown_output)
    return await _call_with(node, arg, pad, fn, None)


async def _attempt(node: NodeSpec, arg: Any, pad: Scratchpad, body: Callable[..., Any]) -> Any:
    """One attempt of the node. The `@task` calls it started and did not await are waited for
    once it returned or paused, as LangGraph's step waits for them (a call that paused pauses
    the node with it); they are cancelled if it failed or was cancelled."""
    joined = False
    try:
        try:
            result = await _call(node, arg, pad, body)
        except GraphInterrupt as gi:
            if pad.node_calls is not None:
                paused, joined = await pad.node_calls.join(), True
                asked = {i.id for i in gi.interrupts}
                more = tuple(i for i in paused if i.id not in asked)
                if more:
                    pause = GraphInterrupt(gi.interrupts + more)
                    pause.reruns = gi.reruns
                    raise pause from gi
            raise
        except ParentCommand:
            if pad.node_calls is not None:
                await pad.node_calls.join()
                joined = True
            raise
        if pad.node_calls is not None:
            paused, joined = await pad.node_calls.join(), True
            if paused:  # (a call the node did not await asked)
                raise GraphInterrupt(paused)
        return result
    finally:
        if not joined and pad.node_calls is not None:
            pad.node_calls.cancel()


async def _call_with(
    node: NodeSpec,
    arg: Any,
    pad: Scratchpad,
    fn: Callable[..., Any],
    config: dict[str, Any] | None,
) -> Any:
    """Call the node's `fn`; `config` is its chain run's config, None outside a `task_scope`."""
    kwargs: dict[str, Any] = {}
    if node.wants_config:
        kwargs["config"] = config if config is not None else node_config(pad)
    if node.wants_writer:
        kwargs["writer"] = pad.writer
    if node.wants_runtime:
        kwargs["runtime"] = pad.run.runtime_for(pad.writer, pad.heartbeat, pad)
    if node.wants_store:
        kwargs["store"] = pad.run.graph.store
    events = pad.run.events
    if node.is_async and not events.live:  # the common case, without call_body's frame
        return await fn(arg, **kwargs)
    result = await call_body(fn, node.is_async, (arg,), kwargs, events, pad.alone)
    if node.is_async or not inspect.isawaitable(result):
        return result
    return await result


def raised_by_body() -> bool:
    """The `asyncio.CancelledError` being handled came from a node's or task's own code:
    nothing asked the running asyncio task to stop (its `cancelling()` count is 0)."""
    try:
        current = asyncio.current_task()
    except RuntimeError:  # (not under asyncio)
        return False
    return current is not None and current.cancelling() == 0


def retry_delay(policy: RetryPolicy, attempt: int) -> float:
    """The pause before retry `attempt` (1-based) under `policy`: exponential, capped, jittered."""
    interval = min(
        policy.max_interval, policy.initial_interval * (policy.backoff_factor ** (attempt - 1))
    )
    return interval + (random.uniform(0, 1) if policy.jitter else 0.0)


def _targets(
    graph: GraphBase, source: str, raw: Iterable[Any], path_map: Mapping[Any, str] | None
) -> list[str | Send]:
    out: list[str | Send] = []
    for item in raw:
        if isinstance(item, Send):
            if item.node not in graph.builder.nodes:
                raise InvalidUpdateError(
                    f"{source}: Send to unknown node {item.node!r}; nodes are "
                    f"{sorted(graph.builder.nodes)}"
                )
            out.append(item)
            continue
        dest = plain_name(item)
        if path_map is not None:
            if item not in path_map:
                raise InvalidUpdateError(
                    f"{source}: path returned {item!r}, which is not a key of its path_map "
                    f"{sorted(map(str, path_map))}"
                )
            dest = plain_name(path_map[item])
        if dest == END:
            continue
        if not isinstance(dest, str) or dest not in graph.builder.nodes:
            raise InvalidUpdateError(
                f"{source}: unknown destination {dest!r}; nodes are "
                f"{sorted(graph.builder.nodes)} (or END)"
            )
        out.append(dest)
    return out


async def _branch(
    graph: GraphBase,
    branch: BranchSpec,
    fresh: Callable[[], Any],
    config: dict[str, Any],
    extra: Any = None,
) -> list[str | Send]:
    # The state as the router's own input schema shows it (its first parameter's annotation),
    # as LangGraph does, else as the graph's, with the keys the node returned that are not
    # state keys (LangGraph passes them through to its conditional edges).
    state = (branch.input_schema or graph.builder.schema).view(fresh())
    if extra and not branch.typed and isinstance(state, dict):
        state = {**extra, **state}
    kwargs = {"config": config} if branch.wants_config else {}
    result = branch.path(state, **kwargs)
    if branch.is_async or inspect.isawaitable(result):
        result = await result
    if result is None:
        raise InvalidUpdateError(
            f"conditional edge from {branch.source!r}: path function returned None; return a "
            "node name, a list of names or Sends, or END"
        )
    raw = result if isinstance(result, (list, tuple, set)) else [result]
    return _targets(graph, f"conditional edge from {branch.source!r}", raw, branch.path_map)


async def route(
    graph: GraphBase,
    node: str,
    items: list[tuple[str, Any]],
    values: Mapping[str, Any],
    goto: Iterable[Any],
    config: dict[str, Any],
    *,
    edges: bool = True,
    window: StepWindow | None = None,
    returned: Any = None,
) -> list[tuple[str, Any]]:
    """The `NEXT` writes of a finished node: its edges, conditional edges and `goto`; a path
    function sees the managed keys (`RemainingSteps`...) of the step `window` describes, and
    the other keys of the dict the node `returned`."""
    if edges and not goto:
        fixed = graph.plan.fixed_routes.get(node)
        if fixed is not None:  # plain edges only: the same writes every time
            return list(fixed)
    targets: list[str | Send] = []
    if goto:
        targets.extend(_targets(graph, f"node {node!r} Command(goto=...)", goto, None))
    if edges:
        targets.extend(graph.plan.static_next.get(node, ()))
    branches = graph.builder.branches.get(node) if edges else None
    if branches:
        cache: list[Any] = []

        def fresh() -> Any:
            if not cache:
                # Keys with a reducer start from their empty value, as the nodes see them
                # (LangGraph: a conditional entry point sees `steps == []` before any write).
                merged = graph.plan.state_values(values)
                graph.plan.apply(merged, items, source=f"node {node!r}", strict=False)
                # As after the step: keys it clears when unwritten are gone (LangGraph's
                # fresh read updates every channel, the unwritten ones with no value).
                if graph.plan.step_scoped:
                    graph.plan.clear_unwritten(merged, (k for k, _ in items))
                managed = graph.builder.schema.managed
                if managed and window is not None:
                    merged.update(managed_values(managed, window))
                cache.append(merged)
            return cache[0]

        for b in branches:
            targets.extend(await _branch(graph, b, fresh, config, returned))
    writes: list[tuple[str, Any]] = [(NEXT, t) for t in targets]
    for barrier in graph.plan.barriers_of.get(node, ()):
        writes.append((barrier, node))
    return writes


async def _start(
    graph: GraphBase,
    task: Task,
    values: Mapping[str, Any],
    pad: Scratchpad,
    is_new: bool,
) -> None:
    """The input task: write the input (or a `Command`'s update) and route from START.

    A `Command` sent to a finished thread routes only to its `goto`; to a new thread it also
    follows START's edges, as plain input does.
    """
    arg = task.spec.arg
    if isinstance(arg, Command):
        items = graph.builder.schema.items(arg.update, source="Command(update=...)")
        goto, edges = arg.goto_targets(), is_new
    else:
        items = graph.builder.input_schema.items(arg, source="input")
        goto, edges = (), True
    task.writes = items + await route(
        graph,
        START,
        items,
        values,
        goto,
        pad.config,
        edges=edges,
        window=_window(pad, graph.builder.schema.managed),
    )
    task.items = items
    task.done = task.finished_now = True


async def execute(
    graph: GraphBase,
    task: Task,
    values: Mapping[str, Any],
    view: Callable[[], Any],
    pad: Scratchpad,
    *,
    is_new: bool = True,
) -> None:
    """Run a task to completion, interrupt or failure, recording the outcome on `task`."""
    if task.name == START:
        try:
            await _start(graph, task, values, pad, is_new)
        except Exception as exc:
            task.error = exc
        return
    node = graph.builder.nodes[task.name]
    arg = node_input(graph, task, values, view, pad.run)
    try:
        body = node.fn if task.spec.timeout is None else send_timed(node, task.spec.timeout)
    except GraphValidationError as exc:  # (a Send's timeout on a sync node: it fails)
        task.error = exc
        return
    attempt = 0
    pad.first_attempt_at = time.time()
    while True:
        attempt += 1
        pad.attempt = attempt
        pad.counter = 0
        pad.sent.clear()  # a retried attempt makes its own
        pad.call_sent.clear()
        token = set_scratchpad(pad)
        try:
            result = await _attempt(node, arg, pad, body)
            break
        except GraphInterrupt as gi:
            task.raised = gi.interrupts
            task.reruns = gi.reruns
            for spent in gi.interrupts if task.reruns else ():  # asks again: not answered
                task.answers.pop(spent.id, None)
            return
        except ParentCommand as pc:
            result = pc.command
            break
        except (GraphBubbleUp, CheckpointerRequiredError) as exc:
            task.error = exc
            return
        except asyncio.CancelledError as exc:
            if not raised_by_body():
                raise  # the run (or the step, a sibling failed) is being cancelled
            task.error = NodeCancelledError(task.name)  # a failure, not retried (LangGraph's)
            task.error.__cause__ = exc
            return
        except Exception as exc:
            policy = next((p for p in node.retry if p.should_retry(exc)), None)
            if policy is None or attempt >= policy.max_attempts:
                task.error = exc
                return
            delay = retry_delay(policy, attempt)
            if pad.run is not None and pad.run.trace is not None:
                pad.run.trace.retry(task, exc, attempt, delay)
            await anyio.sleep(delay)
        finally:
            reset_scratchpad(token)
    try:
        goto: tuple[Any, ...] = ()
        if not isinstance(result, (Command, list, tuple)):  # the common case: a dict or None
            items = graph.builder.schema.items(result, source=f"node {task.name!r}")
            parts: Any = ()
        else:
            parts = result if _is_command_list(result) else (result,)
            if parts is not result and not isinstance(result, Command):
                _refuse_plain_list(graph, task.name, result)
            items = []
        for part in parts:
            if isinstance(part, Command):
                if part.graph == Command.PARENT:
                    command = Command(update=part.update, goto=part.goto)
                    if not pad.in_subgraph:
                        raise NoParentGraphError(command, task.name)
                    task.error = ParentCommand(command)
                    return
                items += graph.builder.schema.items(part.update, source=f"node {task.name!r}")
                goto += part.goto_targets()
            else:
                items += graph.builder.schema.items(part, source=f"node {task.name!r}")
        if pad.sent and graph.builder.schema.kind != "root":  # a root state has no keys
            items = graph.builder.schema.items(pad.sent, source=f"node {task.name!r}") + items
        task.update = update_chunk(items)  # no state key written: None, as in LangGraph
        fixed = None if goto else graph.plan.fixed_routes.get(task.name)
        if fixed is not None:  # plain edges only: no coroutine for the common case
            task.writes = items + list(fixed)
        else:
            task.writes = items + await route(
                graph,
                task.name,
                items,
                values,
                goto,
                pad.config,
                window=_window(pad, graph.builder.schema.managed),
                returned=result if type(result) is dict else None,
            )
        if pad.call_sent and graph.builder.schema.kind != "root":  # (its @task calls')
            task.writes += graph.builder.schema.items(pad.call_sent, source=f"node {task.name!r}")
        task.items = items
    except Exception as exc:
        task.error = exc
        return
    task.done = task.finished_now = True


def _window(pad: Scratchpad, managed: Mapping[str, Any]) -> StepWindow | None:
    """Where the task's run is in its recursion budget, for a schema with `managed` keys (None
    without any, or outside a run: nothing to compute)."""
    run = pad.run
    return None if run is None or not managed else StepWindow(run.steps_run, run.limit)


def node_input(
    graph: GraphBase, task: Task, values: Mapping[str, Any], view: Callable[[], Any], run: Any
) -> Any:
    """What `task`'s node reads: a `Send`'s argument; the keys of the node's own input schema
    (with its managed keys for `run`'s step); else the state as `view()` gives it."""
    if task.spec.push:
        return task.spec.arg
    node = graph.builder.nodes.get(task.name)
    if node is None or node.input_schema is None:
        return view()
    managed = node.input_schema.managed
    window = StepWindow(run.steps_run, run.limit) if run is not None and managed else None
    return own_input(graph, node, values, window)


def own_input(
    graph: GraphBase, node: NodeSpec, values: Mapping[str, Any], window: StepWindow | None
) -> Any:
    """What a node with its own input schema receives: that schema's keys of the state (and
    its managed keys for the step `window` describes)."""
    schema = node.input_schema
    assert schema is not None
    state = graph.plan.state_values(values)
    if schema.managed and window is not None:
        state.update(managed_values(schema.managed, window))
    return schema.view(state)
