"""Reading and editing a thread's state through a compiled graph: `get_state` (with subgraph
states), `get_state_history`, `update_state`, and waiting until a thread is paused or done."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from hitl_async import _sync
from hitl_async._checkpoint import NULL_TASK
from hitl_async._edits import bulk_update_state
from hitl_async._graph_base import GraphBase
from hitl_async._run import Run
from hitl_async._snapshot import snapshot
from hitl_async.checkpoint.capabilities import Capability, ChangeFeed
from hitl_async.checkpoint.ids import check_id
from hitl_async.errors import InvalidConfigError
from hitl_async.types import StateUpdate

if TYPE_CHECKING:
    from hitl_async.types import StateSnapshot

__all__ = ["StateAccess"]

_DERIVED = -1
"""Key of results read from a child's changed channels (valid for a one-task step only)."""

_MAX_CALLS = 16
"""How many subgraph calls of one task `get_state(subgraphs=True)` looks at."""


class StateAccess(GraphBase):
    """The state methods of `CompiledStateGraph`."""

    async def aget_state(self, config: dict[str, Any], *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state at its head, or at the checkpoint named in `config`."""
        self._require_saver("get_state()")
        config = self._config(config)
        run = self._run_for(config)
        await run.load()
        at_head = "checkpoint_id" not in (config.get("configurable") or {})
        # As LangGraph: a config naming a checkpoint gets it as stored (the results of its
        # step's tasks read from its child's header); the thread's head has the writes of
        # tasks that finished in its unfinished step applied.
        made = None if at_head else await self._made_by_child(run)
        state = snapshot(run, at_head=at_head, made=made)
        if subgraphs:
            graph = run.graph
            assert isinstance(graph, StateAccess)
            state = await graph._with_subgraph_states(run, state)
        return state

    def _run_for(self, config: dict[str, Any]) -> Run:
        """A run to read the thread at `config`'s namespace with: a subgraph's namespace is
        read with that subgraph (its schema), from this graph's store."""
        ns = (config.get("configurable") or {}).get("checkpoint_ns") or ""
        graph: StateAccess = self
        for part in ns.split("|") if ns else ():
            found = graph.subgraphs_of(part.split(":", 1)[0])
            if not found:
                graph = self
                break
            graph = found[0]
        run = Run(graph, config, saver=self.checkpointer)
        if graph is not self and graph.checkpointer is None:
            run.serde = self.serde  # stored by the parent's runs, encoded as the parent's
        return run

    async def _with_subgraph_states(self, run: Run, state: StateSnapshot) -> StateSnapshot:
        """Attach each paused subgraph task's own snapshot as its `state`."""
        tasks = []
        for task in state.tasks:
            graphs = self.subgraphs_of(task.name)
            sub_state = None
            for graph in graphs:  # a subgraph node, or the graphs a node's function calls
                sub_state = await self._sub_state_of(graph, run, task.name, task.id)
                if sub_state is not None:
                    break
            tasks.append(task._replace(state=sub_state) if sub_state is not None else task)
        return state._replace(tasks=tuple(tasks))

    async def _sub_state_of(
        self, graph: StateAccess, run: Run, node: str, task_id: str
    ) -> StateSnapshot | None:
        """The state of `graph` called by task `task_id`: of its paused call if one is (a
        node's function may call several subgraphs, each in a namespace of its own)."""
        base = node if graph.keeps_state else f"{node}:{task_id}"
        found = None
        for n in range(_MAX_CALLS):
            part = base if n == 0 else f"{base}:{n}"
            conf = {
                **(run.config.get("configurable") or {}),
                "checkpoint_ns": f"{run.ns}|{part}" if run.ns else part,
            }
            conf.pop("checkpoint_id", None)
            sub = await graph._sub_state({**run.config, "configurable": conf}, run)
            if sub is None:
                break
            found = sub
            if sub.next:
                break
        return found

    async def _sub_state(self, config: dict[str, Any], parent: Run) -> StateSnapshot | None:
        run = Run(self, config, saver=self.checkpointer or parent.saver)
        await run.load()
        if not run.exists:
            return None
        return await self._with_subgraph_states(run, snapshot(run))

    def get_state(self, config: dict[str, Any], *, subgraphs: bool = False) -> StateSnapshot:
        """Synchronous `aget_state()`."""
        return _sync.run(lambda: self.aget_state(config, subgraphs=subgraphs))

    async def aget_state_history(
        self,
        config: dict[str, Any],
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[StateSnapshot]:
        """The thread's checkpoints, newest first; `before` is a config naming a checkpoint."""
        saver = self._require_saver("get_state_history()")
        config = self._config(config)
        conf = config.get("configurable") or {}
        thread_id = conf.get("thread_id")
        if thread_id is None:
            raise InvalidConfigError(
                "get_state_history() needs config={'configurable': {'thread_id': ...}}"
            )
        ns = conf.get("checkpoint_ns", "")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise InvalidConfigError(
                f"thread {thread_id!r}: get_state_history(limit={limit!r}): expected an int "
                f"or None, got {type(limit).__name__}"
            )
        if filter is not None and not isinstance(filter, dict):
            raise InvalidConfigError(
                f"thread {thread_id!r}: get_state_history(filter={filter!r}): expected a dict "
                f"of metadata values or None, got {type(filter).__name__}"
            )
        if before is not None and not isinstance(before, dict):
            raise InvalidConfigError(
                f"thread {thread_id!r}: get_state_history(before=...) takes a config naming "
                f"a checkpoint, got {type(before).__name__}"
            )
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        if before_id is not None:
            check_id("checkpoint_id", before_id, empty_ok=True)
        if conf.get(
            "checkpoint_id"
        ):  # that checkpoint alone (if it passes the others), as LangGraph
            at = await self._history_at(config, conf["checkpoint_id"], filter, before_id, limit)
            if at is not None:
                yield at
            return
        runs = []
        for loaded in await saver.history(
            thread_id, ns, before=before_id, limit=limit, filter=filter
        ):
            run = self._run_for(config)
            run.set_loaded(loaded)
            runs.append(run)
        # A step's task writes are kept in the header of the checkpoint it made (its child):
        # newest first, so the child of each is listed before it, except at a page's start.
        made: dict[str, dict[int, list[tuple[str, Any]]]] = {}
        children = list(runs)
        if before_id is not None and runs:
            loaded_child = await saver.load(thread_id, ns, before_id)
            if loaded_child is not None:
                child = self._run_for(config)
                child.set_loaded(loaded_child)
                children.insert(0, child)
        for child in children:
            parent_id = child.cp.parent_id
            if parent_id is not None and parent_id not in made:
                found = _made_of(child)
                if found is not None:
                    made[parent_id] = found
        for run in runs:
            # Every checkpoint as stored, the head too, like LangGraph: its step's tasks all
            # show in `next`, with the results of those that finished.
            yield snapshot(run, at_head=False, made=_for(run, made))

    async def _history_at(
        self,
        config: dict[str, Any],
        checkpoint_id: Any,
        filter: dict[str, Any] | None,
        before_id: str | None,
        limit: int | None,
    ) -> StateSnapshot | None:
        """`get_state_history()` of a config naming a checkpoint: that one, if it exists and
        passes `filter`, `before` and `limit`, as LangGraph's savers list it."""
        check_id("checkpoint_id", checkpoint_id)
        run = self._run_for(config)
        assert run.saver is not None and run.thread_id is not None
        loaded = await run.saver.load(run.thread_id, run.ns, checkpoint_id)
        if loaded is None or limit == 0 or (before_id and checkpoint_id >= before_id):
            return None
        metadata = loaded.record.metadata
        if filter and not all(metadata.get(k) == v for k, v in filter.items()):
            return None
        run.set_loaded(loaded)
        return snapshot(run, at_head=False, made=await self._made_by_child(run))

    async def _made_by_child(self, run: Run) -> dict[int, list[tuple[str, Any]]] | None:
        """The task writes of a past checkpoint's step, kept in its (newest) child's header."""
        assert run.saver is not None and run.thread_id is not None
        cid = run.cp.checkpoint_id
        for loaded in await run.saver.history(run.thread_id, run.ns):
            if loaded.record.parent_id == cid:
                child = self._run_for(run.config)
                child.set_loaded(loaded)
                found = _made_of(child)
                if found is not None:  # (a fork's copy tells nothing)
                    return _for(run, {str(cid): found})
            if loaded.record.checkpoint_id == cid:
                break
        return None

    def get_state_history(
        self,
        config: dict[str, Any],
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[StateSnapshot]:
        """Synchronous `aget_state_history()`."""

        async def collect() -> list[StateSnapshot]:
            return [
                s
                async for s in self.aget_state_history(
                    config, filter=filter, before=before, limit=limit
                )
            ]

        return iter(_sync.run(collect))

    async def aupdate_state(
        self,
        config: dict[str, Any],
        values: Any,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """Write `values` to the thread as if `as_node` had returned them (a new checkpoint with
        metadata source "update"); returns the new checkpoint's config.

        `as_node="__copy__"`: a copy of the checkpoint (same parent, values and next tasks;
        source "fork"), then `values`, a list of `(values, as_node)`, applied to it. `as_node=END`
        with `values=None`: end the thread (nothing runs next). `as_node="__input__"`: `values`
        as new input."""
        return await self.abulk_update_state(config, [[StateUpdate(values, as_node, task_id)]])

    def update_state(
        self,
        config: dict[str, Any],
        values: Any,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """Synchronous `aupdate_state()`."""
        return _sync.run(lambda: self.aupdate_state(config, values, as_node, task_id))

    async def abulk_update_state(
        self, config: dict[str, Any], supersteps: Sequence[Sequence[StateUpdate]]
    ) -> dict[str, Any]:
        """Apply supersteps of updates: each a list of `StateUpdate(values, as_node)` applied
        together as one new checkpoint (as if those nodes ran in one step); returns the last
        checkpoint's config."""
        self._require_saver("bulk_update_state()")
        run = self._run_for(self._config(config))
        run.durability = "sync"
        await run.claim()
        try:
            return await bulk_update_state(run, supersteps)
        finally:
            await run.release()

    def bulk_update_state(
        self, config: dict[str, Any], supersteps: Sequence[Sequence[StateUpdate]]
    ) -> dict[str, Any]:
        """Synchronous `abulk_update_state()`."""
        return _sync.run(lambda: self.abulk_update_state(config, supersteps))

    async def await_for(
        self,
        config: dict[str, Any],
        *,
        until: str = "paused",
        timeout: float | None = None,
    ) -> StateSnapshot:
        """Wait until the thread is paused (an interrupt is pending) or done (nothing left to
        run), woken by the store's notifications; `TimeoutError` after `timeout` seconds."""
        if until not in ("paused", "done"):
            raise InvalidConfigError(f"until must be 'paused' or 'done', got {until!r}")
        saver = self._capable("wait_for()", Capability.CHANGE_NOTIFICATION)
        assert isinstance(saver, ChangeFeed)
        config = self._config(config)
        thread_id = (config.get("configurable") or {}).get("thread_id")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            snapshot = await self.aget_state(config)
            exists = snapshot.metadata is not None
            if until == "paused" and snapshot.interrupts:
                return snapshot
            if until == "done" and exists and not snapshot.next:
                return snapshot
            left = 5.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"thread {thread_id!r} is not {until} after {timeout} s "
                    f"(next={snapshot.next}, interrupts={len(snapshot.interrupts)})"
                )
            await saver.wait_for_change(str(thread_id), min(left, 5.0))

    def wait_for(
        self, config: dict[str, Any], *, until: str = "paused", timeout: float | None = None
    ) -> StateSnapshot:
        """Synchronous `await_for()`."""
        return _sync.run(lambda: self.await_for(config, until=until, timeout=timeout))


def _made_of(child: Run) -> dict[int, list[tuple[str, Any]]] | None:
    """The writes of the tasks of the step that made `child`, by task index of its parent:
    kept in its header, or (a loop step of one task writing keys without reducer, once each)
    the values of the channels `child` changed, as task 0's. None: it tells nothing."""
    cp = child.cp
    if cp.made_by:
        return cp.made_by_tasks()
    if cp.metadata.get("source") != "loop" or NULL_TASK in cp.writes:
        return None
    fields = child.plan.fields
    changed = [
        (k, cp.values[k])
        for k, version in cp.versions.items()
        if version == cp.checkpoint_id and k in fields and k in cp.values
    ]
    return {_DERIVED: changed}


def _for(
    parent: Run, made: dict[str, dict[int, list[tuple[str, Any]]]]
) -> dict[int, list[tuple[str, Any]]] | None:
    """The results `made` holds for `parent`'s tasks: a derived one only for a one-task step
    run with no `Command(update=...)` folded in (its keys changed the channels too)."""
    found = made.get(str(parent.cp.checkpoint_id))
    if found is None or _DERIVED not in found:
        return found
    if len(parent.tasks) != 1 or NULL_TASK in parent.cp.writes:
        return None
    return {0: found[_DERIVED]}
