"""Running a compiled graph inside a node of another: as a node of its own (`add_node(name,
compiled)`) or called from a node's function. The subgraph keeps its checkpoints in the parent's
thread under a namespace of the parent task, so on resume it continues where it paused and its
finished nodes do not run again; one compiled with `checkpointer=False` stores only a pause."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hitl_async._input import apply_input
from hitl_async._run import Run
from hitl_async._runtime import active_scratchpad, current_scratchpad
from hitl_async._schema import update_as_items
from hitl_async.errors import GraphInterrupt
from hitl_async.runnables import graph_scope
from hitl_async.types import Command

if TYPE_CHECKING:
    from hitl_async._runtime import Scratchpad
    from hitl_async.graph.compiled import CompiledStateGraph

__all__ = ["SubgraphNode", "calling_task", "run_subgraph"]


def calling_task(config: dict[str, Any] | None) -> Scratchpad | None:
    """The running task, when a graph is called from inside a node as a subgraph (a call that
    names a thread of its own is a separate run, not a subgraph)."""
    pad = active_scratchpad()
    if pad is None or pad.run is None:
        return None
    if config and (config.get("configurable") or {}).get("thread_id"):
        return None
    return pad


def _namespace(parent: Run, pad: Scratchpad, keeps_state: bool) -> tuple[str, tuple[str, ...]]:
    """The subgraph call's namespace: the calling task's (one per call), or, for a subgraph
    compiled with `checkpointer=True`, the calling node's (shared by its calls, so the state
    lives on). With it, the call's levels in the stream's namespace: LangGraph shows a task's
    n-th call after its first as one more level, `(..., "node:task_id", "n")`."""
    part = pad.node if keeps_state else f"{pad.node}:{pad.task_id}"
    levels: tuple[str, ...] = (part,)
    if pad.subgraph_calls:
        levels = (part, str(pad.subgraph_calls))
        part += f":{pad.subgraph_calls}"
    pad.subgraph_calls += 1
    return (f"{parent.ns}|{part}" if parent.ns else part), (*parent.ns_path, *levels)


async def run_subgraph(
    graph: CompiledStateGraph, input: Any, pad: Scratchpad, *, from_invoke: bool = False
) -> Any:
    """Run `graph` as part of the task `pad` belongs to; return its output values
    (`from_invoke`: called through the sync `invoke()`, which does not stream its nodes).

    Raises `GraphInterrupt` with the subgraph's pending interrupts when it pauses (the parent
    task pauses with them), and lets `ParentCommand` through to the parent task.
    """
    parent: Run = pad.run
    ns, ns_path = _namespace(parent, pad, graph.keeps_state)
    parent.graph.note_subgraph(pad.node, graph)
    conf = dict(parent.config.get("configurable") or {})
    conf.pop("checkpoint_id", None)
    conf.update(thread_id=parent.thread_id, checkpoint_ns=ns)
    config = {**parent.config, "configurable": conf}
    chain = graph_scope(pad.task_id, graph.name, input)
    if chain is not None:  # the subgraph's tasks are children of its own chain run
        config["callbacks"] = chain.callbacks
    try:
        taps = parent.taps_outputs and not from_invoke
        output = await _run_in(graph, input, pad, parent, ns, ns_path, config, taps)
    except BaseException as exc:
        if chain is not None:
            chain.fail(exc)
        raise
    if chain is not None:
        chain.end(output)
    return output


async def _run_in(
    graph: CompiledStateGraph,
    input: Any,
    pad: Scratchpad,
    parent: Run,
    ns: str,
    ns_path: tuple[str, ...],
    config: dict[str, Any],
    taps_outputs: bool,
) -> Any:
    """`run_subgraph`'s run: load the call's namespace, apply the input, run to the end."""
    run = Run(
        graph,
        config,
        events=parent.events,
        ns_path=ns_path,
        durability="exit" if graph.stateless else parent.durability,
        interrupt_before=graph.interrupt_before_nodes,
        interrupt_after=graph.interrupt_after_nodes,
        saver=graph.checkpointer or parent.saver,
    )
    run.parent = parent
    run.taps_outputs = taps_outputs
    if graph.checkpointer is None:  # stored in the parent's store, so encoded like the parent's
        run.serde = parent.serde
    run.lease = parent.lease
    run.context = parent.context
    run.control = parent.control
    if run.cache is None:
        run.cache = parent.cache
    run.parents = {**parent.parents, parent.ns: str(parent.cp.checkpoint_id)}
    run.replay = parent.replay
    run.address = parent.address
    if run.address.get(ns) and run.replay is not None and run.replay.first_visit(ns):
        run.at = run.address[ns]  # the subgraph checkpoint the root run was given: from it
        await run.load()
    elif run.replay is not None and graph.keeps_state and run.replay.first_visit(ns):
        await _load_before(run, run.replay.checkpoint_id)  # its state at the replayed step
    else:
        await run.load()
    stored = run.exists
    # A namespace of the calling task holds only this call; a shared one (checkpointer=True)
    # continues this call if its last checkpoint was made in the parent's current step (the
    # task is rerun after a pause), else takes the input as a new run on the kept state.
    # (A checkpoint the root run was given to start from is continued, whatever made it.)
    continues = run.at is not None or not graph.keeps_state
    if run.exists and (continues or run.cp.metadata.get("parents") == run.parents):
        answers = {i.id: pad.answers[i.id] for _, i in run.pending() if i.id in pad.answers}
        if answers:
            await apply_input(run, Command(resume=answers))
        elif run.tasks:  # (all done: a step cut short by `step_timeout`, to complete)
            await apply_input(run, None)
        else:
            return run.output()
    else:
        await apply_input(run, input)
    while await run.tick():
        pass
    paused = bool(run.tasks) and any(not t.done for t in run.tasks)
    # checkpointer=False, or durability="exit" (but for checkpointer=True): a call that ran to
    # its end leaves nothing in the store, as in LangGraph; a pause is stored, so that its
    # answer resumes it where it paused. With checkpointer=False (whose pause LangGraph does
    # not keep) the end of a resumed call is stored too, to clear that pause.
    quiet = run.durability == "exit" and not graph.keeps_state
    if paused or (stored and graph.stateless) or not quiet:
        await run.finish()
    if paused:
        pause = GraphInterrupt(run.interrupts)
        pause.reruns = any(t.reruns for t in run.tasks if not t.done)  # a NodeInterrupt's
        raise pause
    return run.output()


async def _load_before(run: Run, before: str) -> None:
    """Load the namespace's last checkpoint made before `before` (a replay's bound); the head
    stays the newest, so the run branches off it."""
    saver, thread_id = run.saver, run.need_thread()
    assert saver is not None
    older = await saver.history(thread_id, run.ns, before=before, limit=1)
    head = await saver.load(thread_id, run.ns)
    run.head = head.record.checkpoint_id if head is not None else None
    run.indexed = None
    if older:
        run.set_loaded(older[0])
    else:
        run.prepare_tasks()


class SubgraphNode:
    """The action of a node that is a compiled graph: state in, the subgraph's output out."""

    def __init__(self, graph: CompiledStateGraph) -> None:
        self.graph = graph
        self.__name__ = graph.name

    async def __call__(self, state: Any) -> dict[str, Any]:
        pad = current_scratchpad("a subgraph node")
        wanted = self.graph.builder.input_schema.fields
        items = update_as_items(state, source=f"state passed to subgraph {self.graph.name!r}")
        sub_input = {k: v for k, v in items if not wanted or k in wanted}
        out = await run_subgraph(self.graph, sub_input, pad)
        keep = pad.run.graph.builder.schema.fields
        return {k: v for k, v in out.items() if not keep or k in keep}
