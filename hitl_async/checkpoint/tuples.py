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


def _where(config: Mapping[str, Any] | None) -> tuple[str, str, str | None]:
    conf = (config or {}).get("configurable") or {}
    thread_id = conf.get("thread_id")
    if thread_id is None:
        raise ValueError(
            "a checkpointer read needs config={'configurable': {'thread_id': ...}} (optionally "
            "'checkpoint_ns' and 'checkpoint_id')"
        )
    return str(thread_id), conf.get("checkpoint_ns") or "", conf.get("checkpoint_id")


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
        """The thread's newest checkpoint (or the one `checkpoint_id` names); None if none."""
        saver: BaseSaver = self  # type: ignore[assignment]
        thread_id, ns, checkpoint_id = _where(config)
        loaded = await saver.load(thread_id, ns, checkpoint_id)
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
        """The thread's checkpoints, newest first (`before`: a config naming a checkpoint;
        `filter`: metadata keys and values; a `checkpoint_id` in `config`: that one only)."""
        saver: BaseSaver = self  # type: ignore[assignment]
        thread_id, ns, checkpoint_id = _where(config)
        if checkpoint_id is not None:
            found = await self.aget_tuple(config or {})
            if found is not None:
                yield found
            return
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        for loaded in await saver.history(
            thread_id, ns, before=before_id, limit=limit, filter=filter
        ):
            yield self._tuple(loaded)

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
