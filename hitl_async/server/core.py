"""`ServerCore`: what the HTTP routes and the run executor share — the graphs, the checkpoint
store, the record store, the long-term store — and the assistant and thread record operations of
the API (the thread state ones come from `ThreadStates`, in `thread_states`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hitl_async._checkpoint import now_iso
from hitl_async.checkpoint.capabilities import RunQueueStore
from hitl_async.graph._runnable_api import json_schema
from hitl_async.server.errors import ApiError, not_found
from hitl_async.server.records import (
    AssistantRecord,
    RecordStore,
    ThreadQuery,
    ThreadRecord,
    matches_filter,
)
from hitl_async.server.thread_states import ThreadStates
from hitl_async.server.webhooks import WebhookPolicy

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import BaseSaver
    from hitl_async.graph.compiled import CompiledStateGraph
    from hitl_async.store.base import BaseStore

__all__ = [
    "ASSISTANT_CACHE_SECONDS",
    "ASSISTANT_NAMESPACE",
    "DEFAULT_QUEUE",
    "ServerCore",
    "assistant_id_for",
]

ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
"""The namespace of system assistant ids, as LangGraph's server derives them (`uuid5` of the
graph name), so a client that stored an assistant id finds the same one here."""

DEFAULT_QUEUE = "hitl-serve"
ASSISTANT_CACHE_SECONDS = 1.0


def assistant_id_for(graph_id: str) -> str:
    """The system assistant id of a graph."""
    return str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_id))


class ServerCore(ThreadStates):
    """The graphs of a `langgraph.json`, bound to one checkpoint store, plus the record store
    and the long-term store (`store`: what the `/store` routes serve and the graphs' nodes see;
    None: the routes answer 404). The thread state operations come from `ThreadStates`."""

    def __init__(
        self,
        graphs: Mapping[str, CompiledStateGraph],
        saver: BaseSaver,
        records: RecordStore,
        *,
        queue: str = DEFAULT_QUEUE,
        store: BaseStore | None = None,
    ) -> None:
        if not graphs:
            raise ValueError("a server needs at least one graph")
        self.graphs = dict(graphs)
        self.saver = saver
        assert isinstance(saver, RunQueueStore)  # (`hitl serve` requires every capability)
        self.run_queue: RunQueueStore = saver
        self.records = records
        self.queue = queue
        self.store = store
        self._assistants: dict[str, tuple[float, AssistantRecord]] = {}
        """Assistants read lately, with when: run creation reads its assistant twice, and a
        change made through another process is seen after `ASSISTANT_CACHE_SECONDS`."""

    @property
    def webhooks(self) -> WebhookPolicy:
        """Which webhook URLs runs may name: the `webhooks` section of the `langgraph.json`
        served (`config`, set by `hitl serve`), else LangGraph's defaults."""
        config = getattr(self, "config", None)
        return WebhookPolicy.from_config(getattr(config, "webhooks", None))

    async def start(self) -> None:
        """Set the stores up and register one system assistant per graph."""
        await self.saver.setup()
        await self.records.setup()
        setup = getattr(self.store, "setup", None)
        if setup is not None:
            await setup()
        for graph_id in self.graphs:
            now = now_iso()
            await self.records.put_assistant(
                AssistantRecord(
                    assistant_id=assistant_id_for(graph_id),
                    graph_id=graph_id,
                    name=graph_id,
                    created_at=now,
                    updated_at=now,
                    metadata={"created_by": "system"},
                ),
                if_absent=True,
            )

    async def aclose(self) -> None:
        await self.records.aclose()
        close = getattr(self.store, "aclose", None)
        if close is not None:
            await close()
        await self.saver.aclose()

    # -- assistants ------------------------------------------------------------------------------

    async def assistant(self, assistant_id: str) -> AssistantRecord:
        """An assistant by id, or by the name of its graph; 404 otherwise."""
        if assistant_id in self.graphs:
            assistant_id = assistant_id_for(assistant_id)
        cached = self._assistants.get(assistant_id)
        if cached is not None and time.monotonic() - cached[0] < ASSISTANT_CACHE_SECONDS:
            found: AssistantRecord | None = cached[1]
        else:
            found = await self.records.get_assistant(assistant_id)
            if found is not None:
                self.remember_assistant(found)
        if found is None or found.deleted or found.graph_id not in self.graphs:
            raise not_found("Assistant", assistant_id)
        return found

    def remember_assistant(self, record: AssistantRecord) -> None:
        """Cache `record` as just read or written by this process."""
        self._assistants[record.assistant_id] = (time.monotonic(), record)

    async def search_assistants(
        self,
        *,
        graph_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        name: str | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> list[AssistantRecord]:
        found = [
            a
            for a in await self.records.list_assistants()
            if a.graph_id in self.graphs
            and not a.deleted
            and (graph_id is None or a.graph_id == graph_id)
            and (not metadata or matches_filter(a.metadata, metadata))
            and (name is None or name.lower() in a.name.lower())
        ]
        key = sort_by or "created_at"
        found.sort(
            key=lambda a: (str(getattr(a, key, "")), a.assistant_id),
            reverse=(sort_order or "desc") == "desc",
        )
        return found[offset : offset + limit]

    def graph(self, graph_id: str) -> CompiledStateGraph:
        graph = self.graphs.get(graph_id)
        if graph is None:
            raise not_found("Graph", graph_id)
        return graph

    def schemas(self, graph_id: str) -> dict[str, Any]:
        """JSON schemas of the graph's input, output, state and context (where derivable)."""
        return {"graph_id": graph_id, **graph_schemas(self.graph(graph_id), graph_id)}

    def subgraph_schemas(self, graph_id: str, *, recurse: bool) -> dict[str, Any]:
        """The schemas of the graph's subgraph nodes by namespace (`outer|inner` with
        `recurse`), as LangGraph's `GET /assistants/{id}/subgraphs`."""
        out: dict[str, Any] = {}

        def walk(graph: Any, prefix: str) -> None:
            for name, spec in graph.builder.nodes.items():
                if spec.subgraph is None:
                    continue
                ns = f"{prefix}|{name}" if prefix else name
                out[ns] = graph_schemas(spec.subgraph, name)
                if recurse:
                    walk(spec.subgraph, ns)

        walk(self.graph(graph_id), "")
        return out

    def drawing(self, graph_id: str, xray: bool | int = False) -> dict[str, Any]:
        """Nodes and edges, in the shape (and order) of LangGraph's `GET /assistants/{id}/graph`;
        with `xray`, subgraphs drawn inside their node (`subgraph:node` ids)."""
        drawn = self.graph(graph_id).get_graph(xray=xray)
        nodes: list[dict[str, Any]] = []
        for name in drawn.nodes:
            if name == "__end__":
                nodes.append({"id": name})
            else:
                nodes.append({"id": name, "type": "runnable", "data": {"name": name}})
        edges = []
        for edge in drawn.edges:
            out: dict[str, Any] = {"source": edge.source, "target": edge.target}
            if edge.conditional:
                out["conditional"] = True
            if edge.data is not None:
                out["data"] = edge.data
            edges.append(out)
        return {"nodes": nodes, "edges": edges}

    # -- threads ---------------------------------------------------------------------------------

    async def create_thread(
        self,
        *,
        thread_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        if_exists: str = "raise",
    ) -> ThreadRecord:
        now = now_iso()
        record = ThreadRecord(
            thread_id=thread_id or str(uuid.uuid4()),
            created_at=now,
            updated_at=now,
            state_updated_at=now,
            metadata=dict(metadata or {}),
        )
        if await self.records.insert_thread(record):
            return record
        if if_exists == "do_nothing":
            existing = await self.records.get_thread(record.thread_id)
            if existing is not None:
                return existing
        raise ApiError(409, f"Thread with ID {record.thread_id} already exists")

    async def thread(
        self, thread_id: str, filters: Mapping[str, Any] | None = None
    ) -> ThreadRecord:
        """The thread, 404 when it does not exist or the caller may not see it."""
        found = await self.records.get_thread(thread_id)
        if found is None or (filters and not matches_filter(found.metadata, filters)):
            raise not_found("Thread", thread_id)
        return found

    async def update_thread_metadata(
        self, thread_id: str, metadata: Mapping[str, Any], filters: Mapping[str, Any] | None
    ) -> ThreadRecord:
        await self.thread(thread_id, filters)

        def change(record: ThreadRecord) -> ThreadRecord:
            record.metadata = {**record.metadata, **metadata}
            record.updated_at = now_iso()
            return record

        updated = await self.records.update_thread(thread_id, change)
        if updated is None:
            raise not_found("Thread", thread_id)
        return updated

    async def delete_thread(self, thread_id: str, filters: Mapping[str, Any] | None) -> None:
        await self.thread(thread_id, filters)
        active = await self.records.active_runs(thread_id)
        for run in active:
            if run.status == "pending" and await self.run_queue.finish_request(
                run.run_id, None, "cancelled"
            ):
                await self.records.delete_run(run.run_id)
        active = await self.records.active_runs(thread_id)
        if any(r.status == "running" for r in active):
            raise ApiError(
                409,
                f"Thread with ID {thread_id} has a running run; cancel it first "
                f"(runs {[r.run_id for r in active]})",
            )
        await self.saver.delete_thread(thread_id)
        await self.records.delete_thread(thread_id)

    async def search_threads(self, query: ThreadQuery) -> list[ThreadRecord]:
        return await self.records.search_threads(query)


def graph_schemas(graph: Any, name: str) -> dict[str, Any]:
    """JSON schemas of a compiled graph's input, output, state and context, titled `name_*`."""
    builder = graph.builder
    return {
        "input_schema": _schema(builder.input_schema.schema, f"{name}_input"),
        "output_schema": _schema(builder.output_schema.schema, f"{name}_output"),
        "state_schema": _schema(builder.state_schema, f"{name}_state"),
        "config_schema": {},
        "context_schema": _schema(builder.context_schema, f"{name}_context"),
    }


def _schema(schema: Any, title: str) -> dict[str, Any] | None:
    """A JSON schema of a state, input, output or context class, titled for the API (None when
    there is none, or pydantic is missing)."""
    if schema is None:
        return None
    try:
        return {**json_schema(schema, title), "title": title}
    except ImportError:  # pragma: no cover - pydantic comes with the server extra
        return None


def thread_json(record: ThreadRecord, *, full: bool = True) -> dict[str, Any]:
    """A thread as the API answers it."""
    out: dict[str, Any] = {
        "thread_id": record.thread_id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "state_updated_at": record.state_updated_at or record.updated_at,
        "metadata": record.metadata,
        "status": record.status,
        "config": record.config,
        "values": record.values,
    }
    if full and record.values is not None:
        out["error"] = record.error
        out["interrupts"] = record.interrupts
    return out


def pick(doc: dict[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
    """Only the `select`ed fields (all when None)."""
    if not select:
        return doc
    return {k: v for k, v in doc.items() if k in select}
