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
    from hitl_async._checkpoint import EngineCheckpoint
    from hitl_async.checkpoint.base import BaseSaver, LoadedCheckpoint

__all__ = ["CheckpointTuple", "LangGraphReads", "sync_capable"]


class CheckpointTuple(NamedTuple):
    """A stored checkpoint as LangGraph's savers return it."""

    config: dict[str, Any]
    checkpoint: dict[str, Any]
    """`id`, `ts`, `channel_values` (the state keys), `channel_versions`, `versions_seen`,
    `updated_channels` (the state keys this checkpoint changed)."""
    metadata: dict[str, Any]
    parent_config: dict[str, Any] | None = None
    pending_writes: list[tuple[str, str, Any]] | None = None
    """`(task_id, channel, value)` of the tasks of the step that ran (or runs) from this
    checkpoint, as LangGraph keeps them: see `hitl_async._step_writes`."""


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

    def _decode(self, loaded: LoadedCheckpoint) -> EngineCheckpoint:
        from hitl_async._checkpoint import EngineCheckpoint
        from hitl_async.serde import default_serializer

        saver: BaseSaver = self  # type: ignore[assignment]
        return EngineCheckpoint.decode(loaded, getattr(saver, "serde", None) or default_serializer)

    def _tuple(
        self, loaded: LoadedCheckpoint, cp: EngineCheckpoint, child: EngineCheckpoint | None
    ) -> CheckpointTuple:
        """`cp` (decoded from `loaded`) as LangGraph's savers return it; `child`: a checkpoint
        made from it that tells its step's writes, if there is one."""
        from hitl_async._step_writes import channel_name, step_writes

        rec = loaded.record
        assert cp.checkpoint_id is not None
        thread, ns = rec.thread_id, rec.checkpoint_ns
        return CheckpointTuple(
            config=_config(thread, ns, cp.checkpoint_id),
            checkpoint={
                "v": 4,
                "id": cp.checkpoint_id,
                "ts": cp.created_at,
                "channel_values": {
                    channel_name(k): v for k, v in cp.values.items() if k[:2] != "__"
                },
                "channel_versions": {
                    channel_name(k): v for k, v in cp.versions.items() if k[:2] != "__"
                },
                "versions_seen": {},
                "updated_channels": sorted(
                    channel_name(k)
                    for k, v in cp.versions.items()
                    if v == cp.checkpoint_id and k[:2] != "__"
                ),
            },
            metadata=dict(cp.metadata),
            parent_config=_config(thread, ns, cp.parent_id) if cp.parent_id else None,
            pending_writes=step_writes(cp, ns, child),
        )

    async def _tuples(self, found: list[LoadedCheckpoint], complete: bool) -> list[CheckpointTuple]:
        """`found` as tuples, each with the writes of its step: those of a completed step are
        kept by the checkpoint it made (its child), looked up among `found` when it holds every
        checkpoint of its namespaces (`complete`), else in the namespace's history."""
        from hitl_async._step_writes import tells_step

        saver: BaseSaver = self  # type: ignore[assignment]
        decoded = {id(loaded): self._decode(loaded) for loaded in found}
        children: dict[tuple[str, str, str], list[EngineCheckpoint]] = {}

        def note(loaded: LoadedCheckpoint, cp: EngineCheckpoint) -> None:
            rec = loaded.record
            if rec.parent_id is not None:
                key = (rec.thread_id, rec.checkpoint_ns, rec.parent_id)
                children.setdefault(key, []).append(cp)

        if complete:
            for loaded in found:
                note(loaded, decoded[id(loaded)])
        else:
            spaces = {(c.record.thread_id, c.record.checkpoint_ns) for c in found}
            for thread_id, ns in sorted(spaces):
                oldest = min(
                    c.record.checkpoint_id
                    for c in found
                    if (c.record.thread_id, c.record.checkpoint_ns) == (thread_id, ns)
                )
                for loaded in await saver.history(thread_id, ns):
                    if loaded.record.checkpoint_id <= oldest:
                        break  # a child is always newer than its parent
                    note(loaded, self._decode(loaded))
        out = []
        for loaded in found:
            cp, rec = decoded[id(loaded)], loaded.record
            candidates = children.get((rec.thread_id, rec.checkpoint_ns, rec.checkpoint_id), [])
            # The newest that tells (as history: a fork's copy tells nothing).
            newest = sorted(candidates, key=lambda c: str(c.checkpoint_id), reverse=True)
            child = next((c for c in newest if tells_step(cp, c)), None)
            out.append(self._tuple(loaded, cp, child))
        return out

    async def aget_tuple(self, config: Mapping[str, Any]) -> CheckpointTuple | None:
        """The thread's newest checkpoint (or the one `checkpoint_id` names) in the config's
        namespace, the root one when it names none (as LangGraph's); None if there is none."""
        saver: BaseSaver = self  # type: ignore[assignment]
        thread_id, ns, checkpoint_id = _where(config)
        loaded = await saver.load(thread_id, ns or "", checkpoint_id)
        if loaded is None:
            return None
        # The newest checkpoint has no child: only a named one is looked up in the history.
        return (await self._tuples([loaded], complete=checkpoint_id is None))[0]

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
        found = await self._listed(config, filter, before, limit)
        named = ((config or {}).get("configurable") or {}).get("checkpoint_id")
        complete = not (filter or before or limit is not None or named)
        for one in await self._tuples(found, complete):
            yield one

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
