"""LangGraph's checkpointer read API on every saver: `get_tuple`, `list`, `get` and their async
forms (and `adelete_thread`), so code and tests that read a checkpointer directly
(`checkpointer.get_tuple(config).metadata`, `list(checkpointer.list(config))`) run unchanged.

Read-only: checkpoints are written by the engine only (LangGraph's `put`/`put_writes` have no
counterpart). Values are decoded with the saver's `serde` if it has one, else the default
serializer (the one graphs use unless given another).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import sniffio

from hitl_async import _sync

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import BaseSaver, LoadedCheckpoint

__all__ = ["CheckpointTuple", "LangGraphReads", "sync_capable"]


class CheckpointTuple(NamedTuple):
    """A stored checkpoint as LangGraph's savers return it."""

    config: dict[str, Any]
    checkpoint: dict[str, Any]
    """`id`, `ts`, `channel_values` (the state keys), `channel_versions`, `versions_seen`."""
    metadata: dict[str, Any]
    parent_config: dict[str, Any] | None = None
    pending_writes: list[tuple[str, str, Any]] | None = None
    """`(task_id, channel, value)` of the tasks of the step that runs from this checkpoint."""


def _where(config: Mapping[str, Any] | None) -> tuple[str, str | None, str | None]:
    """`(thread_id, checkpoint_ns, checkpoint_id)` of a read's config; the namespace is None
    when the config names none (LangGraph's `list` then reads every namespace)."""
    conf = (config or {}).get("configurable") or {}
    thread_id = conf.get("thread_id")
    if thread_id is None:
        raise ValueError(
            "a checkpointer read needs config={'configurable': {'thread_id': ...}} (optionally "
            "'checkpoint_ns' and 'checkpoint_id')"
        )
    ns = conf.get("checkpoint_ns")
    return str(thread_id), None if ns is None else str(ns), conf.get("checkpoint_id")


def _config(thread_id: str, ns: str, checkpoint_id: str) -> dict[str, Any]:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _in_async_context() -> bool:
    """Whether an event loop (asyncio or trio) runs in this thread."""
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


class _Done:
    """An awaitable already complete: what a blocking call made from sync code returns."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


def sync_capable(method: Callable[..., Any]) -> Callable[..., Any]:
    """A saver coroutine method that also works from synchronous code, as LangGraph's sync
    `delete_thread()` does: inside an event loop it returns the coroutine to await; called
    where no loop runs, it does the work at once (through the sync facade's loop)."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _in_async_context():
            return method(self, *args, **kwargs)
        _sync.run(lambda: method(self, *args, **kwargs))
        return _Done()

    return call


class LangGraphReads:
    """The read half of LangGraph's `BaseCheckpointSaver`, built on `load` and `history`;
    `delete_thread()` also works from synchronous code (LangGraph's is sync; ours a coroutine
    to the engine), so `checkpointer.delete_thread(tid)` in a script deletes the thread."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = getattr(cls, "delete_thread", None)  # its own, or a mixin's
        if found is not None and inspect.iscoroutinefunction(found):
            cls.delete_thread = sync_capable(found)  # type: ignore[attr-defined]

    def _tuple(self, loaded: LoadedCheckpoint) -> CheckpointTuple:
        from hitl_async._checkpoint import EngineCheckpoint
        from hitl_async.serde import default_serializer

        saver: BaseSaver = self  # type: ignore[assignment]
        cp = EngineCheckpoint.decode(loaded, getattr(saver, "serde", None) or default_serializer)
        rec = loaded.record
        assert cp.checkpoint_id is not None
        thread, ns = rec.thread_id, rec.checkpoint_ns
        return CheckpointTuple(
            config=_config(thread, ns, cp.checkpoint_id),
            checkpoint={
                "v": 4,
                "id": cp.checkpoint_id,
                "ts": cp.created_at,
                "channel_values": {k: v for k, v in cp.values.items() if k[:2] != "__"},
                "channel_versions": dict(cp.versions),
                "versions_seen": {},
            },
            metadata=dict(cp.metadata),
            parent_config=_config(thread, ns, cp.parent_id) if cp.parent_id else None,
            pending_writes=[
                (task_id, channel, value)
                for task_id, rows in cp.writes.items()
                for _, channel, value in rows
            ],
        )

    async def aget_tuple(self, config: Mapping[str, Any]) -> CheckpointTuple | None:
        """The thread's newest checkpoint (or the one `checkpoint_id` names) in the config's
        namespace, the root one when it names none (as LangGraph's); None if there is none."""
        saver: BaseSaver = self  # type: ignore[assignment]
        thread_id, ns, checkpoint_id = _where(config)
        loaded = await saver.load(thread_id, ns or "", checkpoint_id)
        return None if loaded is None else self._tuple(loaded)

    async def aget(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """The checkpoint part of `aget_tuple()`."""
        found = await self.aget_tuple(config)
        return None if found is None else found.checkpoint

    async def alist(
        self,
        config: Mapping[str, Any] | None,
        *,
        filter: Mapping[str, Any] | None = None,
        before: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first (by id), as LangGraph's SQL savers list them: of the
        config's thread (every thread when `config` is None) and namespace (every namespace,
        root and subgraphs, when it names none); only the one `checkpoint_id` names if it does;
        `before`: ids older than the one that config names; `filter`: metadata keys and values;
        `limit`: at most that many in all."""
        if limit is not None and limit <= 0:
            return
        for loaded in await self._listed(config, filter, before, limit):
            yield self._tuple(loaded)

    async def _listed(
        self,
        config: Mapping[str, Any] | None,
        filter: Mapping[str, Any] | None,
        before: Mapping[str, Any] | None,
        limit: int | None,
    ) -> list[LoadedCheckpoint]:
        from hitl_async.checkpoint.rows import metadata_matches  # rows imports base, base us

        saver: BaseSaver = self  # type: ignore[assignment]
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        if config is None:
            threads, ns, checkpoint_id = await saver.list_threads(), None, None
        else:
            thread_id, ns, checkpoint_id = _where(config)
            threads = [thread_id]
        found: list[LoadedCheckpoint] = []
        for thread_id in threads:
            spaces = [ns] if ns is not None else await saver.thread_namespaces(thread_id)
            for space in spaces:
                if checkpoint_id is None:
                    found += await saver.history(
                        thread_id, space, before=before_id, limit=limit, filter=filter
                    )
                    continue
                one = await saver.load(thread_id, space, checkpoint_id)
                if (
                    one is not None
                    and (before_id is None or checkpoint_id < before_id)
                    and metadata_matches(one.record.metadata, filter)
                ):
                    found.append(one)
        found.sort(key=lambda c: c.record.checkpoint_id, reverse=True)
        return found if limit is None else found[:limit]

    async def adelete_thread(self, thread_id: str) -> None:
        """LangGraph's name for `delete_thread()` (which is a coroutine here)."""
        saver: BaseSaver = self  # type: ignore[assignment]
        await saver.delete_thread(str(thread_id))

    def get_tuple(self, config: Mapping[str, Any]) -> CheckpointTuple | None:
        """Synchronous `aget_tuple()`."""
        return _sync.run(lambda: self.aget_tuple(config))

    def get(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """Synchronous `aget()`."""
        return _sync.run(lambda: self.aget(config))

    def list(
        self,
        config: Mapping[str, Any] | None,
        *,
        filter: Mapping[str, Any] | None = None,
        before: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Synchronous `alist()` (read at once, then iterated)."""

        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        return iter(_sync.run(collect))
