"""`ThreadStates`: a server thread's state, read and written through the graph that runs it
(`graph_of_thread`; `state`, `history`, `update_state`, `apply_supersteps`, `copy_thread`), and
its head copied into the thread's record (`refresh_thread`, `set_thread_status`) so that listing
and searching threads reads no checkpoint. Mixed into `ServerCore`, apart from the operations on
the thread records alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hitl_async._checkpoint import now_iso
from hitl_async.errors import HitlError, ThreadBusyError
from hitl_async.server.encoding import jsonable
from hitl_async.server.errors import ApiError, not_found, unprocessable
from hitl_async.server.records import RecordStore, ThreadRecord
from hitl_async.server.state import interrupts_by_task, snapshot_json, status_of

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import BaseSaver
    from hitl_async.graph.compiled import CompiledStateGraph
    from hitl_async.types import StateSnapshot

__all__ = ["ThreadStates"]


def _thread_config(thread_id: str, checkpoint: Mapping[str, Any] | None = None) -> dict[str, Any]:
    conf: dict[str, Any] = {"thread_id": thread_id}
    if checkpoint:
        if checkpoint.get("checkpoint_id"):
            conf["checkpoint_id"] = checkpoint["checkpoint_id"]
        if checkpoint.get("checkpoint_ns"):
            conf["checkpoint_ns"] = checkpoint["checkpoint_ns"]
    return {"configurable": conf}


class ThreadStates:
    """The thread state operations of `ServerCore`, over its graphs, checkpoint store and
    record store."""

    graphs: dict[str, CompiledStateGraph]
    saver: BaseSaver
    records: RecordStore

    if TYPE_CHECKING:  # (`ServerCore`'s)

        async def create_thread(
            self,
            *,
            thread_id: str | None = None,
            metadata: Mapping[str, Any] | None = None,
            if_exists: str = "raise",
        ) -> ThreadRecord: ...

    def graph_of_thread(self, record: ThreadRecord) -> CompiledStateGraph | None:
        """The graph that runs the thread (its metadata's graph_id), else the only graph."""
        graph_id = record.metadata.get("graph_id")
        if isinstance(graph_id, str) and graph_id in self.graphs:
            return self.graphs[graph_id]
        if len(self.graphs) == 1:
            return next(iter(self.graphs.values()))
        return None

    async def state(
        self,
        record: ThreadRecord,
        checkpoint: Mapping[str, Any] | None = None,
        *,
        subgraphs: bool = False,
    ) -> dict[str, Any]:
        graph = self.graph_of_thread(record)
        if graph is None:
            return _empty_state()
        snapshot = await graph.aget_state(
            _thread_config(record.thread_id, checkpoint), subgraphs=subgraphs
        )
        if checkpoint and checkpoint.get("checkpoint_id") and snapshot.metadata is None:
            raise not_found("Checkpoint", str(checkpoint["checkpoint_id"]))
        return snapshot_json(snapshot, record.thread_id)

    async def history(
        self,
        record: ThreadRecord,
        *,
        limit: int = 10,
        before: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        graph = self.graph_of_thread(record)
        if graph is None:
            return []
        config = _thread_config(
            record.thread_id, {"checkpoint_ns": (checkpoint or {}).get("checkpoint_ns")}
        )
        before_config = _thread_config(record.thread_id, before) if before else None
        return [
            snapshot_json(s, record.thread_id)
            async for s in graph.aget_state_history(
                config,
                filter=dict(metadata) if metadata else None,
                before=before_config,
                limit=limit,
            )
        ]

    async def update_state(
        self,
        record: ThreadRecord,
        values: Any,
        *,
        as_node: str | None = None,
        checkpoint: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        graph = self.graph_of_thread(record)
        if graph is None:  # (400, not 422: as LangGraph's server)
            raise ApiError(
                400,
                f"thread {record.thread_id} has no graph yet: start a run on it first, or "
                f"set metadata graph_id to one of {sorted(self.graphs)}",
            )
        if as_node is not None and as_node not in graph.builder.nodes and as_node != "__start__":
            raise ApiError(
                400,
                f"as_node {as_node!r} is not a node of graph {graph.name!r}; nodes: "
                f"{sorted(graph.builder.nodes)}",
            )
        if await self.records.active_runs(record.thread_id):
            raise ApiError(
                409, f"Thread with ID {record.thread_id} is busy: a run is pending or running"
            )
        try:
            config = await graph.aupdate_state(
                _thread_config(record.thread_id, checkpoint), values, as_node
            )
        except ThreadBusyError as exc:
            raise ApiError(409, str(exc)) from exc
        except (HitlError, ValueError, TypeError) as exc:
            raise unprocessable(f"{type(exc).__name__}: {exc}") from exc
        await self.refresh_thread(record.thread_id)
        conf = dict(config.get("configurable") or {})
        conf.setdefault("checkpoint_ns", "")
        ref = {
            "thread_id": conf.get("thread_id"),
            "checkpoint_ns": conf.get("checkpoint_ns", ""),
            "checkpoint_id": conf.get("checkpoint_id"),
        }
        return {"checkpoint": ref, "configurable": ref, "checkpoint_id": ref["checkpoint_id"]}

    async def apply_supersteps(
        self, record: ThreadRecord, supersteps: Sequence[Mapping[str, Any]]
    ) -> ThreadRecord:
        """Write `supersteps` (each `{"updates": [{"values", "as_node"}, ...]}`) to a new
        thread's state, one checkpoint each, as `threads.create(supersteps=...)` asks."""
        from hitl_async.types import StateUpdate

        graph = self.graph_of_thread(record)
        if graph is None:
            raise unprocessable(
                f"thread {record.thread_id}: supersteps need a graph_id, one of "
                f"{sorted(self.graphs)}"
            )
        steps: list[list[StateUpdate]] = []
        for step in supersteps:
            updates = step.get("updates") if isinstance(step, Mapping) else None
            if not isinstance(updates, list) or not all(isinstance(u, Mapping) for u in updates):
                raise unprocessable('each superstep must be {"updates": [{"values", "as_node"}]}')
            if any(u.get("command") is not None for u in updates):
                raise unprocessable("supersteps with a command are not supported by hitl serve")
            steps.append([StateUpdate(u.get("values"), u.get("as_node")) for u in updates])
        try:
            await graph.abulk_update_state(_thread_config(record.thread_id), steps)
        except (HitlError, ValueError, TypeError) as exc:
            raise unprocessable(f"{type(exc).__name__}: {exc}") from exc
        return await self.refresh_thread(record.thread_id) or record

    async def refresh_thread(
        self,
        thread_id: str,
        *,
        failed: bool = False,
        error: Any = None,
        status: str | None = None,
        graph: CompiledStateGraph | None = None,
    ) -> ThreadRecord | None:
        """Copy the thread's head state (values, interrupts, status) into its record (read
        through `graph`, else the graph its metadata names)."""
        if graph is None:
            record = await self.records.get_thread(thread_id)
            if record is None:
                return None
            graph = self.graph_of_thread(record)
        snapshot: StateSnapshot | None = None
        if graph is not None:
            snapshot = await graph.aget_state(_thread_config(thread_id))
        now = now_iso()

        def change(current: ThreadRecord) -> ThreadRecord:
            if snapshot is not None and snapshot.metadata is not None:
                current.values = jsonable(snapshot.values)
                current.interrupts = interrupts_by_task(snapshot)
                current.status = status or status_of(snapshot, failed=failed)
            else:
                current.values = None
                current.interrupts = {}
                current.status = status or ("error" if failed else "idle")
            current.error = error
            current.updated_at = now
            current.state_updated_at = now
            return current

        return await self.records.update_thread(thread_id, change)

    async def set_thread_status(self, thread_id: str, status: str) -> ThreadRecord | None:
        """Set the record's status alone (a run starting marks its thread busy)."""

        def change(current: ThreadRecord) -> ThreadRecord:
            current.status = status
            current.updated_at = now_iso()
            return current

        return await self.records.update_thread(thread_id, change)

    async def copy_thread(self, record: ThreadRecord) -> ThreadRecord:
        """A new thread with the same metadata and the same checkpoints (root namespace)."""
        new = await self.create_thread(metadata=record.metadata)
        history = await self.saver.history(record.thread_id)
        head: str | None = None
        for loaded in reversed(history):
            copied = dataclasses.replace(loaded.record, thread_id=new.thread_id)
            from hitl_async.checkpoint.base import BlobRecord

            blobs = [
                BlobRecord(channel, copied.channel_versions[channel], data)
                for channel, data in loaded.blobs.items()
                if channel in copied.channel_versions
            ]
            await self.saver.commit(copied, blobs, expected_head=head, writes=list(loaded.writes))
            head = copied.checkpoint_id
        if head is not None:
            await self.refresh_thread(new.thread_id)
        return new


def _empty_state() -> dict[str, Any]:
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "metadata": None,
        "created_at": None,
        "checkpoint": None,
        "parent_checkpoint": None,
        "interrupts": [],
        "checkpoint_id": None,
        "parent_checkpoint_id": None,
    }
