"""Conformance of the storage capability (`BaseSaver`): every store must behave like
`InMemorySaver`, byte for byte. Records are built by hand: the byte-level protocol, no engine.

Use: subclass `StorageConformance` in a test module of the driver, and provide a `saver` fixture
yielding a fresh, set-up store (closed after the test), e.g.

    class TestMyStore(StorageConformance):
        @pytest.fixture
        async def saver(self):
            async with MyStore(...) as store:
                yield store
                await store.destroy()

The tests are async (anyio's pytest plugin, installed with anyio, runs them on asyncio by default).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from hitl_async.checkpoint.base import BaseSaver, LoadedCheckpoint, WriteRecord
from hitl_async.checkpoint.ids import MAX_ID_BYTES
from hitl_async.errors import CheckpointConflictError, InvalidThreadIdError, SerializationError
from hitl_async.testing.records import (
    HOSTILE,
    OLD,
    assert_loaded,
    blob,
    by_key,
    chain,
    cid,
    expected_blobs,
    rec,
)

__all__ = ["CheckpointConformance", "StorageConformance", "StoreMaintenanceConformance"]


class CheckpointConformance:
    """Commits, loads, conflicts, history and namespaces."""

    pytestmark = pytest.mark.anyio

    async def test_commit_load_round_trip(self, saver: BaseSaver) -> None:
        r1 = rec("t", cid(1), {"a": "1", "b": "1"}, metadata={"source": "input", "step": -1})
        await saver.commit(r1, [blob("a", "1"), blob("b", "1")], expected_head=None)
        r2 = rec(
            "t",
            cid(2),
            {"a": "2", "b": "1"},
            parent=cid(1),
            metadata={"source": "loop", "step": 0, "x": [1, 2.5, None, True, "ü"], "n": {"k": "v"}},
        )
        await saver.commit(r2, [blob("a", "2")], expected_head=cid(1))  # only the changed channel

        head = await saver.load("t")
        assert head is not None
        assert head.record == r2
        assert head.record.parent_id == cid(1)
        assert head.record.header == r2.header
        assert dict(head.record.metadata) == dict(r2.metadata)
        assert dict(head.blobs) == {"a": b"a@2", "b": b"b@1"}
        assert list(head.writes) == []

        first = await saver.load("t", "", cid(1))
        assert_loaded(first, r1)

        writes = [
            WriteRecord("task1", 0, "a", b"w0", "~__pregel_pull, n1"),
            WriteRecord("task1", 1, "b", b"w1"),
        ]
        await saver.put_writes("t", "", cid(2), writes)
        head = await saver.load("t")
        assert head is not None
        assert by_key(head.writes) == writes
        assert list((await saver.load("t", "", cid(1))).writes) == []  # type: ignore[union-attr]

    async def test_put_writes_upsert_by_task_and_idx(self, saver: BaseSaver) -> None:
        await chain(saver, "t", 1)
        await saver.put_writes(
            "t", "", cid(1), [WriteRecord("t1", 0, "a", b"old"), WriteRecord("t1", 1, "b", b"x")]
        )
        await saver.put_writes(
            "t",
            "",
            cid(1),
            [WriteRecord("t1", 0, "c", b"new", "p"), WriteRecord("t2", 0, "a", b"y")],
        )
        got = await saver.load("t")
        assert got is not None
        assert by_key(got.writes) == [
            WriteRecord("t1", 0, "c", b"new", "p"),
            WriteRecord("t1", 1, "b", b"x"),
            WriteRecord("t2", 0, "a", b"y"),
        ]

    async def test_commit_with_writes(self, saver: BaseSaver) -> None:
        r1 = rec("t", cid(1), {"a": "1"})
        paused = [
            WriteRecord("task", 0, "__interrupt__", b"\x81\xa1q\x01"),
            WriteRecord("task", 1, "a", b"v"),
        ]
        await saver.commit(r1, [blob("a", "1")], expected_head=None, writes=paused)
        got = await saver.load("t")
        assert got is not None
        assert by_key(got.writes) == paused

        r2 = rec("t", cid(2), {"a": "1"}, parent=cid(1))
        await saver.commit(r2, [], expected_head=cid(1))
        head = await saver.load("t")
        assert head is not None and head.record == r2
        assert list(head.writes) == []
        assert dict(head.blobs) == {"a": b"a@1"}
        assert by_key((await saver.load("t", "", cid(1))).writes) == paused  # type: ignore[union-attr]

    async def test_head_conflict_stores_nothing(self, saver: BaseSaver) -> None:
        records = await chain(saver, "t", 2)
        stale = rec("t", cid(3), {"const": "1", "a": "99"}, parent=cid(1))
        with pytest.raises(CheckpointConflictError) as info:
            await saver.commit(
                stale,
                [blob("a", "99")],
                expected_head=cid(1),
                writes=[WriteRecord("x", 0, "a", b"nope")],
            )
        assert info.value.expected == cid(1)
        assert info.value.actual == cid(2)
        assert info.value.thread_id == "t"
        assert_loaded(await saver.load("t"), records[1])
        assert await saver.load("t", "", cid(3)) is None
        assert [c.record.checkpoint_id for c in await saver.history("t")] == [cid(2), cid(1)]
        # the thread goes on from the real head
        ok = rec("t", cid(3), {"const": "1", "a": "3"}, parent=cid(2))
        await saver.commit(ok, [blob("a", "3")], expected_head=cid(2))
        assert_loaded(await saver.load("t"), ok)

    async def test_first_commit_conflicts_when_thread_exists(self, saver: BaseSaver) -> None:
        first = rec("t", cid(1), {"a": "1"})
        await saver.commit(first, [blob("a", "1")], expected_head=None)
        with pytest.raises(CheckpointConflictError) as info:
            await saver.commit(rec("t", cid(2), {"a": "2"}), [blob("a", "2")], expected_head=None)
        assert info.value.expected is None and info.value.actual == cid(1)
        assert_loaded(await saver.load("t"), first)
        assert len(await saver.history("t")) == 1

    async def test_conflict_on_unknown_thread(self, saver: BaseSaver) -> None:
        with pytest.raises(CheckpointConflictError) as info:
            await saver.commit(rec("t", cid(2), {"a": "1"}), [blob("a", "1")], expected_head=cid(1))
        assert info.value.actual is None
        assert await saver.load("t") is None
        assert await saver.list_threads() == []

    async def test_commit_of_existing_checkpoint_id_conflicts(self, saver: BaseSaver) -> None:
        """A checkpoint id is never reused: committing one already stored (a retried commit that
        did apply, or a fork reusing an old id) is a conflict, and nothing of it is written."""
        records = await chain(saver, "t", 2)
        kept = [WriteRecord("k", 0, "a", b"kept")]
        await saver.put_writes("t", "", cid(1), kept)
        nope = [WriteRecord("x", 0, "a", b"nope")]

        again = rec("t", cid(2), {"const": "1", "a": "2"}, parent=cid(2), metadata={"step": 99})
        with pytest.raises(CheckpointConflictError) as info:
            await saver.commit(
                again,
                [blob("a", "2", b"overwritten"), blob("const", "1", b"overwritten")],
                expected_head=cid(2),
                writes=nope,
            )
        assert info.value.thread_id == "t" and info.value.checkpoint_ns == ""

        older = rec("t", cid(1), {"const": "1", "a": "2"}, parent=cid(2), metadata={"step": 99})
        with pytest.raises(CheckpointConflictError):
            await saver.commit(
                older, [blob("a", "2", b"overwritten")], expected_head=cid(2), writes=nope
            )

        head = await saver.load("t")
        assert_loaded(head, records[1])  # record, head and blob bytes untouched
        assert head is not None and list(head.writes) == []
        first = await saver.load("t", "", cid(1))
        assert_loaded(first, records[0])
        assert first is not None and by_key(first.writes) == kept
        assert [c.record for c in await saver.history("t")] == records[::-1]

        # the same id in another namespace or thread is another checkpoint
        sub = rec("t", cid(2), {"a": "s"}, ns="sub")
        await saver.commit(sub, [blob("a", "s")], expected_head=None)
        assert_loaded(await saver.load("t", "sub"), sub)
        # and the thread goes on from its head
        ok = rec("t", cid(3), {"const": "1", "a": "3"}, parent=cid(2))
        await saver.commit(ok, [blob("a", "3")], expected_head=cid(2))
        assert_loaded(await saver.load("t"), ok)

    async def test_fork_from_older_checkpoint(self, saver: BaseSaver) -> None:
        await chain(saver, "t", 2)
        fork = rec("t", cid(3), {"const": "1", "a": "f"}, parent=cid(1))
        await saver.commit(fork, [blob("a", "f")], expected_head=cid(2))
        assert_loaded(await saver.load("t"), fork)
        history = await saver.history("t")
        assert [(c.record.checkpoint_id, c.record.parent_id) for c in history] == [
            (cid(3), cid(1)),
            (cid(2), cid(1)),
            (cid(1), None),
        ]

    async def test_history_order_before_limit(self, saver: BaseSaver) -> None:
        records = await chain(saver, "t", 5)
        history = await saver.history("t")
        assert [c.record for c in history] == records[::-1]
        for loaded, record in zip(history, records[::-1], strict=True):
            assert_loaded(loaded, record)

        def ids(hs: list[LoadedCheckpoint]) -> list[str]:
            return [c.record.checkpoint_id for c in hs]

        assert ids(await saver.history("t", before=cid(4))) == [cid(3), cid(2), cid(1)]
        assert ids(await saver.history("t", before=cid(1))) == []
        assert ids(await saver.history("t", limit=2)) == [cid(5), cid(4)]
        assert ids(await saver.history("t", before=cid(5), limit=3)) == [cid(4), cid(3), cid(2)]
        assert ids(await saver.history("t", limit=10)) == [cid(i) for i in range(5, 0, -1)]
        assert await saver.history("nobody") == []

    async def test_history_metadata_filter(self, saver: BaseSaver) -> None:
        def meta(i: int) -> dict[str, Any]:
            return {
                "source": "input" if i == 1 else "loop",
                "step": i,
                "even": i % 2 == 0,
                "writes": {"node": {"k": [i % 2, "x"]}},
                **({"maybe": None} if i == 3 else {}),
            }

        await chain(saver, "t", 6, metadata=meta)

        async def ids(**kw: Any) -> list[str]:
            return [c.record.checkpoint_id for c in await saver.history("t", **kw)]

        assert await ids(filter={"source": "input"}) == [cid(1)]
        assert await ids(filter={"source": "loop", "step": 4}) == [cid(4)]
        assert await ids(filter={"source": "nothing"}) == []
        assert await ids(filter={"absent": 1}) == []
        assert await ids(filter={"maybe": None}) == [cid(3)]  # present-and-None only
        assert await ids(filter={"writes": {"node": {"k": [0, "x"]}}}) == [cid(6), cid(4), cid(2)]
        assert await ids(filter={"writes": {"node": {"k": [0]}}}) == []  # whole-value equality
        # limit applies after filtering, before applies too
        assert await ids(filter={"even": True}, limit=2) == [cid(6), cid(4)]
        assert await ids(filter={"even": False}, limit=2) == [cid(5), cid(3)]
        assert await ids(filter={"even": False}, before=cid(5), limit=5) == [cid(3), cid(1)]
        assert await ids(filter={}) == [cid(i) for i in range(6, 0, -1)]

    async def test_history_filter_uses_python_equality_and_limit_zero(
        self, saver: BaseSaver
    ) -> None:
        metas = {1: {"n": 1, "d": {"x": 1, "y": [1, 2]}}, 2: {"n": 2.0, "d": {}}, 3: {"n": True}}
        await chain(saver, "t", 3, metadata=lambda i: metas[i])

        async def ids(**kw: Any) -> list[str]:
            return [c.record.checkpoint_id for c in await saver.history("t", **kw)]

        assert await ids(filter={"n": 1}) == [cid(3), cid(1)]  # 1 == True == 1.0
        assert await ids(filter={"n": 1.0}) == [cid(3), cid(1)]
        assert await ids(filter={"n": 2}) == [cid(2)]
        assert await ids(filter={"d": {"y": [1, 2], "x": 1}}) == [cid(1)]  # key order irrelevant
        assert await ids(filter={"d": {"y": [2, 1], "x": 1}}) == []  # list order is not
        assert await ids(limit=0) == []
        assert await ids(limit=0, filter={"n": 1}) == []

    async def test_namespaces_are_isolated(self, saver: BaseSaver) -> None:
        root = await chain(saver, "t", 3)
        sub = await chain(saver, "t", 2, ns="sub:1")
        assert_loaded(await saver.load("t"), root[-1])
        assert_loaded(await saver.load("t", "sub:1"), sub[-1])
        assert [c.record for c in await saver.history("t", "sub:1")] == sub[::-1]
        assert [c.record for c in await saver.history("t")] == root[::-1]
        assert await saver.load("t", "sub:2") is None
        assert await saver.load("t", "sub:1", cid(3)) is None
        # heads are per namespace
        with pytest.raises(CheckpointConflictError):
            await saver.commit(rec("t", cid(9), {}, ns="sub:1"), [], expected_head=cid(3))
        await saver.put_writes("t", "sub:1", cid(2), [WriteRecord("k", 0, "a", b"sub")])
        assert list((await saver.load("t")).writes) == []  # type: ignore[union-attr]
        assert list(await saver.list_threads()) == ["t"]

    async def test_thread_namespaces(self, saver: BaseSaver) -> None:
        """Every namespace with a checkpoint, sorted (what `list(config)` without a
        `checkpoint_ns` reads); none for an unknown or deleted thread."""
        await chain(saver, "t", 2, ns="sub:2|inner:1")
        await chain(saver, "t", 1)
        await chain(saver, "t", 1, ns="sub:1")
        await chain(saver, "other", 1, ns="elsewhere:1")
        assert await saver.thread_namespaces("t") == ["", "sub:1", "sub:2|inner:1"]
        assert await saver.thread_namespaces("other") == ["elsewhere:1"]
        assert await saver.thread_namespaces("unknown") == []
        await saver.delete_thread("t")
        assert await saver.thread_namespaces("t") == []

    async def test_load_by_id_and_missing(self, saver: BaseSaver) -> None:
        records = await chain(saver, "t", 3)
        for record in records:
            assert_loaded(await saver.load("t", "", record.checkpoint_id), record)
        assert await saver.load("t", "", cid(42)) is None
        assert await saver.load("unknown") is None
        assert await saver.load("unknown", "", cid(1)) is None

    async def test_load_with_missing_blob_raises(self, saver: BaseSaver) -> None:
        """A checkpoint whose channel_versions names a blob that is not stored is corrupt: load()
        raises SerializationError naming thread, checkpoint and channel (never a partial state)."""
        records = await chain(saver, "thread-x", 1)
        broken = rec("thread-x", cid(2), {"const": "1", "a": "1", "ghost": "7"}, parent=cid(1))
        await saver.commit(broken, [], expected_head=cid(1))  # blobs are "only what changed"
        for checkpoint_id in (None, cid(2)):
            with pytest.raises(SerializationError) as info:
                await saver.load("thread-x", "", checkpoint_id)
            message = str(info.value)
            assert "thread-x" in message and cid(2) in message and "ghost" in message
        assert_loaded(await saver.load("thread-x", "", cid(1)), records[0])  # others unaffected

    async def test_history_with_missing_blob_raises(self, saver: BaseSaver) -> None:
        records = await chain(saver, "thread-x", 1)
        broken = rec("thread-x", cid(2), {"const": "1", "a": "1", "ghost": "7"}, parent=cid(1))
        await saver.commit(broken, [], expected_head=cid(1))
        with pytest.raises(SerializationError, match="ghost"):
            await saver.history("thread-x")
        assert [c.record for c in await saver.history("thread-x", before=cid(2))] == records


class StoreMaintenanceConformance:
    """Deletes, prunes, hostile ids and concurrency."""

    pytestmark = pytest.mark.anyio

    async def test_delete_thread(self, saver: BaseSaver) -> None:
        await chain(saver, "doomed", 3)
        await chain(saver, "doomed", 2, ns="sub:1")
        await saver.put_writes("doomed", "", cid(3), [WriteRecord("k", 0, "a", b"w")])
        keep = await chain(saver, "kept", 2)
        await saver.delete_thread("doomed")
        assert await saver.load("doomed") is None
        assert await saver.load("doomed", "sub:1") is None
        assert await saver.history("doomed") == []
        assert await saver.history("doomed", "sub:1") == []
        assert await saver.list_threads() == ["kept"]
        assert_loaded(await saver.load("kept"), keep[-1])
        assert len(await saver.history("kept")) == 2
        # the id can be reused from scratch
        fresh = rec("doomed", cid(1), {"a": "z"})
        await saver.commit(fresh, [blob("a", "z")], expected_head=None)
        got = await saver.load("doomed")
        assert got is not None and got.record == fresh and list(got.writes) == []
        await saver.delete_thread("never-existed")

    async def test_prune_keep_last(self, saver: BaseSaver) -> None:
        root = await chain(saver, "t", 5)
        sub = await chain(saver, "t", 3, ns="sub:1")
        other = await chain(saver, "other", 3)
        for c in root:
            await saver.put_writes("t", "", c.checkpoint_id, [WriteRecord("k", 0, "a", b"w")])

        assert await saver.prune("t", keep_last=2) == 3 + 1
        kept = await saver.history("t")
        assert [c.record for c in kept] == root[:2:-1]
        for loaded, record in zip(kept, root[:2:-1], strict=True):
            assert_loaded(loaded, record)  # `const` blob from checkpoint 1 survives
            assert len(loaded.writes) == 1
        for c in root[:3]:
            assert await saver.load("t", "", c.checkpoint_id) is None
        sub_kept = await saver.history("t", "sub:1")
        assert [c.record for c in sub_kept] == sub[:0:-1]
        for loaded, record in zip(sub_kept, sub[:0:-1], strict=True):
            assert_loaded(loaded, record)
        assert len(await saver.history("other")) == 3  # other threads untouched
        for record in other:
            assert_loaded(await saver.load("other", "", record.checkpoint_id), record)

        assert await saver.prune("t", keep_last=2) == 0
        assert await saver.prune("t") == 0
        with pytest.raises(ValueError):
            await saver.prune("t", keep_last=0)
        assert await saver.prune("nobody", keep_last=1) == 0

    async def test_prune_keeps_paused_head(self, saver: BaseSaver) -> None:
        records = await chain(saver, "t", 3)
        interrupt = [
            WriteRecord("task", 0, "__interrupt__", b"pending"),
            WriteRecord("task", 1, "x", b"1"),
        ]
        paused = rec("t", cid(4), {"const": "1", "a": "3"}, parent=cid(3))
        await saver.commit(paused, [], expected_head=cid(3), writes=interrupt)

        assert await saver.prune("t", keep_last=1) == 3
        head = await saver.load("t")
        assert head is not None
        assert head.record == paused
        assert dict(head.blobs) == expected_blobs(paused.channel_versions)  # blobs of older ckpts
        assert by_key(head.writes) == interrupt
        assert [c.record for c in await saver.history("t")] == [paused]
        for r in records:
            assert await saver.load("t", "", r.checkpoint_id) is None

    async def test_prune_newer_than(self, saver: BaseSaver) -> None:
        now = datetime.now(UTC)
        stamp = lambda i: OLD if i <= 3 else now.isoformat(timespec="microseconds")  # noqa: E731
        records = await chain(saver, "t", 5, created_at=stamp)
        assert await saver.prune("t", newer_than=now - timedelta(hours=1)) == 3
        kept = await saver.history("t")
        assert [c.record for c in kept] == records[:2:-1]
        for loaded, record in zip(kept, records[:2:-1], strict=True):
            assert_loaded(loaded, record)

        # everything old: only the head survives; a naive datetime counts as UTC
        olds = await chain(saver, "u", 3, created_at=lambda i: OLD)
        assert await saver.prune("u", newer_than=datetime(2021, 1, 1)) == 2
        assert [c.record for c in await saver.history("u")] == [olds[-1]]
        assert_loaded(await saver.load("u"), olds[-1])

        # both criteria: survivors are the union
        both = await chain(saver, "v", 6, created_at=lambda i: OLD if i in (1, 2, 4) else None)
        assert await saver.prune("v", keep_last=2, newer_than=now - timedelta(hours=1)) == 3
        assert [c.record for c in await saver.history("v")] == [both[5], both[4], both[2]]

    async def test_large_blob_round_trip(self, saver: BaseSaver) -> None:
        big = os.urandom(10 * 1024 * 1024)
        r = rec("t", cid(1), {"big": "1", "small": "1"})
        await saver.commit(r, [blob("big", "1", big), blob("small", "1")], expected_head=None)
        got = await saver.load("t")
        assert got is not None
        assert got.blobs["big"] == big
        assert got.blobs["small"] == b"small@1"

    @pytest.mark.parametrize("name", HOSTILE, ids=repr)
    async def test_hostile_identifiers(self, saver: BaseSaver, name: str) -> None:
        versions = {name: name, "plain": "1"}
        r = rec(name, name + "1", versions, ns=name, metadata={name: name, "k": name})
        await saver.commit(r, [blob(name, name), blob("plain", "1")], expected_head=None)
        w = WriteRecord(name, 0, name, name.encode(), name)
        await saver.put_writes(name, name, name + "1", [w])
        got = await saver.load(name, name)
        assert got is not None
        assert got.record == r
        assert dict(got.blobs) == expected_blobs(versions)
        assert list(got.writes) == [w]
        assert [c.record for c in await saver.history(name, name, filter={name: name})] == [r]
        assert await saver.load(name) is None  # default namespace is a different one
        assert await saver.load("x") is None
        assert name in await saver.list_threads()
        assert await saver.prune(name, keep_last=1) == 0
        await saver.delete_thread(name)
        assert await saver.load(name, name) is None
        assert await saver.list_threads() == []

    async def test_keys_do_not_collide(self, saver: BaseSaver) -> None:
        one = rec("a:b", cid(1), {"c:d": "1"}, ns="c")
        two = rec("a", cid(1), {"c:d": "1"}, ns="b:c")
        three = rec("a:b:c", cid(1), {"c:d": "1"}, ns="")
        await saver.commit(one, [blob("c:d", "1", b"one")], expected_head=None)
        await saver.commit(two, [blob("c:d", "1", b"two")], expected_head=None)
        await saver.commit(three, [blob("c:d", "1", b"three")], expected_head=None)
        await saver.put_writes("a:b", "c", cid(1), [WriteRecord("t", 0, "x", b"w-one")])
        for r, data in ((one, b"one"), (two, b"two"), (three, b"three")):
            got = await saver.load(r.thread_id, r.checkpoint_ns)
            assert got is not None and got.record == r
            assert dict(got.blobs) == {"c:d": data}
            assert [w.data for w in got.writes] == ([b"w-one"] if r is one else [])
        assert sorted(await saver.list_threads()) == ["a", "a:b", "a:b:c"]
        await saver.delete_thread("a")
        assert await saver.load("a", "b:c") is None
        assert (await saver.load("a:b", "c")) is not None
        assert (await saver.load("a:b:c")) is not None

    async def test_200_concurrent_commits(self, saver: BaseSaver) -> None:
        n = 200

        async def run(i: int) -> None:
            t = f"thread-{i}"
            r1 = rec(t, cid(1), {"a": "1", "b": "1"}, metadata={"i": i})
            await saver.commit(
                r1, [blob("a", "1", f"{i}".encode()), blob("b", "1")], expected_head=None
            )
            r2 = rec(t, cid(2), {"a": "2", "b": "1"}, parent=cid(1), metadata={"i": i})
            await saver.commit(r2, [blob("a", "2", f"{i}!".encode())], expected_head=cid(1))

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(run, i)

        assert sorted(await saver.list_threads()) == sorted(f"thread-{i}" for i in range(n))
        for i in range(n):
            got = await saver.load(f"thread-{i}")
            assert got is not None
            assert got.record.checkpoint_id == cid(2)
            assert dict(got.blobs) == {"a": f"{i}!".encode(), "b": b"b@1"}
            assert got.record.metadata == {"i": i}

    async def test_concurrent_conflicts_one_winner_each(self, saver: BaseSaver) -> None:
        """Many writers race for the same heads: one wins per thread, losers store nothing."""
        threads, writers = 20, 5
        wins: dict[str, list[int]] = {f"t{j}": [] for j in range(threads)}
        losses: list[CheckpointConflictError] = []

        async def write(t: str, k: int) -> None:
            r = rec(t, cid(1), {"a": str(k)}, metadata={"writer": k})
            try:
                await saver.commit(r, [blob("a", str(k))], expected_head=None)
            except CheckpointConflictError as exc:
                losses.append(exc)
            else:
                wins[t].append(k)

        async with anyio.create_task_group() as tg:
            for j in range(threads):
                for k in range(writers):
                    tg.start_soon(write, f"t{j}", k)

        assert len(losses) == threads * (writers - 1)
        for t, won in wins.items():
            assert len(won) == 1
            got = await saver.load(t)
            assert got is not None
            assert got.record.metadata == {"writer": won[0]}
            assert dict(got.blobs) == {"a": f"a@{won[0]}".encode()}

    async def test_list_threads(self, saver: BaseSaver) -> None:
        assert await saver.list_threads() == []
        for t in ("x", "y", "z"):
            await chain(saver, t, 2)
        await chain(saver, "x", 1, ns="sub")
        assert sorted(await saver.list_threads()) == ["x", "y", "z"]
        limited = await saver.list_threads(limit=2)
        assert len(limited) == 2 and set(limited) <= {"x", "y", "z"}
        # pending writes alone do not make a thread
        await saver.put_writes("w", "", cid(1), [WriteRecord("k", 0, "a", b"w")])
        assert sorted(await saver.list_threads()) == ["x", "y", "z"]
        assert await saver.load("w") is None

    @pytest.mark.parametrize(
        "bad", ["\ud800", "a\x00b", "x" * (MAX_ID_BYTES + 1), "é" * 513, ""], ids=repr
    )
    async def test_invalid_thread_ids_are_refused_up_front(
        self, saver: BaseSaver, bad: str
    ) -> None:
        """A thread id no store can hold (lone surrogate, NUL, too long, empty) is an
        `InvalidThreadIdError` naming it, before anything is written, on every driver."""
        r = rec(bad, cid(1), {"a": "1"})
        with pytest.raises(InvalidThreadIdError) as info:
            await saver.commit(r, [blob("a", "1")], expected_head=None)
        assert info.value.kind == "thread id" and info.value.value == bad
        for call in (
            lambda: saver.load(bad),
            lambda: saver.history(bad),
            lambda: saver.put_writes(bad, "", cid(1), [WriteRecord("t", 0, "a", b"w")]),
            lambda: saver.delete_thread(bad),
            lambda: saver.prune(bad, keep_last=1),
        ):
            with pytest.raises(InvalidThreadIdError):
                await call()
        assert await saver.list_threads() == []
        fine = "é" * 512  # exactly MAX_ID_BYTES in UTF-8
        await saver.commit(rec(fine, cid(1), {"a": "1"}), [blob("a", "1")], expected_head=None)
        assert await saver.list_threads() == [fine]


class StorageConformance(CheckpointConformance, StoreMaintenanceConformance):
    """The whole storage conformance suite: every store passes it."""
