"""A third-party driver in a page: a dict-backed store with the storage capability only,
validated by `hitl_async.testing` exactly as a driver package would validate itself, and the
clear error a graph gives when a feature needs a capability the store lacks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    BaseSaver,
    BlobRecord,
    CheckpointConflictError,
    CheckpointRecord,
    Command,
    LoadedCheckpoint,
    MissingCapabilityError,
    SerializationError,
    StateGraph,
    Worker,
    WriteRecord,
    interrupt,
)
from hitl_async.checkpoint.base import prune_cutoff
from hitl_async.checkpoint.capabilities import Capability, capabilities_of
from hitl_async.checkpoint.ids import validate_thread_id
from hitl_async.checkpoint.rows import metadata_matches
from hitl_async.testing import StorageConformance

pytestmark = pytest.mark.anyio


class DictStore(BaseSaver):
    """Checkpoints in plain dicts: `{(thread, ns): {checkpoint_id: (record, writes)}}`, heads
    and blobs beside them. Storage only: no leases, no inbox, no run queue."""

    def __init__(self) -> None:
        self.spaces: dict[tuple[str, str], dict[str, tuple[CheckpointRecord, dict[Any, Any]]]] = {}
        self.heads: dict[tuple[str, str], str] = {}
        self.blobs: dict[tuple[str, str, str, str], bytes] = {}

    async def commit(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        *,
        expected_head: str | None,
        writes: Sequence[WriteRecord] = (),
        lease: Any = None,
        inbox: Any = None,
    ) -> None:
        key = (validate_thread_id(record.thread_id), record.checkpoint_ns)
        head = self.heads.get(key)
        if head != expected_head:
            raise CheckpointConflictError(*key, expected_head, head)
        space = self.spaces.setdefault(key, {})
        if record.checkpoint_id in space:
            raise CheckpointConflictError.duplicate(*key, record.checkpoint_id, head, head)
        for b in blobs:
            self.blobs[(*key, b.channel, b.version)] = b.data
        space[record.checkpoint_id] = (record, {(w.task_id, w.idx): w for w in writes})
        self.heads[key] = record.checkpoint_id

    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        *,
        lease: Any = None,
        inbox: Any = None,
    ) -> None:
        space = self.spaces.get((validate_thread_id(thread_id), checkpoint_ns), {})
        if checkpoint_id in space:
            space[checkpoint_id][1].update({(w.task_id, w.idx): w for w in writes})

    def _loaded(self, key: tuple[str, str], cid: str) -> LoadedCheckpoint:
        record, writes = self.spaces[key][cid]
        blobs = {}
        for channel, version in record.channel_versions.items():
            data = self.blobs.get((*key, channel, version))
            if data is None:
                raise SerializationError(f"thread {key[0]!r}, checkpoint {cid!r}: no {channel!r}")
            blobs[channel] = data
        return LoadedCheckpoint(record, blobs, list(writes.values()))

    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        key = (validate_thread_id(thread_id), checkpoint_ns)
        cid = checkpoint_id or self.heads.get(key)
        return self._loaded(key, cid) if cid in self.spaces.get(key, {}) else None

    async def history(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[LoadedCheckpoint]:
        key = (validate_thread_id(thread_id), checkpoint_ns)
        ids = sorted(self.spaces.get(key, {}), reverse=True)
        picked = [
            cid
            for cid in ids
            if (before is None or cid < before)
            and metadata_matches(self.spaces[key][cid][0].metadata, filter)
        ]
        return [self._loaded(key, cid) for cid in picked[: limit if limit is not None else None]]

    async def delete_thread(self, thread_id: str) -> None:
        validate_thread_id(thread_id)
        for key in [k for k in self.spaces if k[0] == thread_id]:
            del self.spaces[key]
            self.heads.pop(key, None)

    async def prune(
        self, thread_id: str, *, keep_last: int | None = None, newer_than: datetime | None = None
    ) -> int:
        validate_thread_id(thread_id)
        if keep_last is None and newer_than is None:
            return 0
        cutoff, removed = prune_cutoff(keep_last, newer_than), 0
        for key in [k for k in self.spaces if k[0] == thread_id]:
            space, ids = self.spaces[key], sorted(self.spaces[key], reverse=True)
            for rank, cid in enumerate(ids):
                newer = cutoff is not None and space[cid][0].created_at > cutoff
                if (
                    cid != self.heads[key]
                    and not newer
                    and (keep_last is None or rank >= keep_last)
                ):
                    del space[cid]
                    removed += 1
            live = {(ch, v) for r, _ in space.values() for ch, v in r.channel_versions.items()}
            for blob_key in [b for b in self.blobs if b[:2] == key and b[2:] not in live]:
                del self.blobs[blob_key]
        return removed

    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        return list(dict.fromkeys(t for t, _ in self.heads))[:limit]

    async def thread_namespaces(self, thread_id: str) -> list[str]:
        return sorted(ns for t, ns in self.heads if t == validate_thread_id(thread_id))


class TestDictStore(StorageConformance):
    """The storage conformance suite, run against the example driver."""

    @pytest.fixture
    async def saver(self) -> AsyncIterator[DictStore]:
        yield DictStore()


# ------------------------------------------------------------------- what a graph can do with it


class State(TypedDict):
    amount: int
    decision: str


def _graph(store: BaseSaver) -> Any:
    def approve(state: State) -> dict[str, Any]:
        return {"decision": interrupt({"approve": state["amount"]})}

    builder = StateGraph(State)
    builder.add_node("approve", approve)
    builder.add_edge(START, "approve")
    builder.add_edge("approve", END)
    return builder.compile(checkpointer=store, name="approvals")


def test_capabilities_are_answerable() -> None:
    store = DictStore()
    assert capabilities_of(store) == {Capability.STORAGE}
    assert store.supports(Capability.STORAGE) and not store.supports(Capability.LEASES)
    assert not store.supports_coordination


async def test_a_storage_only_store_pauses_and_resumes() -> None:
    graph = _graph(DictStore())
    cfg = {"configurable": {"thread_id": "t1"}}
    paused = await graph.ainvoke({"amount": 5}, cfg)
    assert "__interrupt__" in paused
    assert await graph.ainvoke(Command(resume="yes"), cfg) == {"amount": 5, "decision": "yes"}


@pytest.mark.parametrize(
    ("feature", "missing"),
    [
        ("submit()", "run queue"),
        ("inbox()", "inbox"),
        ("recover()", "leases"),
        ("wait_for()", "change notification"),
        ("Worker", "leases and inbox and run queue"),
    ],
)
async def test_a_feature_the_store_lacks_is_a_clear_error(feature: str, missing: str) -> None:
    graph = _graph(DictStore())
    cfg = {"configurable": {"thread_id": "t1"}}
    calls = {
        "submit()": lambda: graph.asubmit({"amount": 1}, cfg),
        "inbox()": lambda: graph.ainbox(),
        "recover()": lambda: graph.arecover(),
        "wait_for()": lambda: graph.await_for(cfg, timeout=1),
    }
    with pytest.raises(MissingCapabilityError) as info:
        if feature == "Worker":
            Worker(graph)
        else:
            await calls[feature]()
    error = info.value
    assert error.needed_for == feature and " and ".join(error.missing) == missing
    message = str(error)
    assert "DictStore" in message and feature in message and missing in message
    assert "hitl_async.checkpoint.capabilities." in message  # what to implement
    assert await DictStore().list_threads() == []  # nothing was written anywhere
