"""Conformance of the optional capabilities: leases with fencing, the inbox index, the run
queue and change notification. Subclass the classes of the capabilities your store declares,
next to `StorageConformance`, with the same `saver` fixture (see `hitl_async.testing`)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from hitl_async.checkpoint.base import WriteRecord
from hitl_async.checkpoint.capabilities import (
    Capability,
    ChangeFeed,
    InboxQuery,
    InboxStore,
    LeaseStore,
    RunQuery,
    RunQueueStore,
    run_order,
)
from hitl_async.errors import LeaseLostError, ThreadBusyError
from hitl_async.testing.records import entry, record, request, single_blob

__all__ = [
    "ChangeFeedConformance",
    "InboxConformance",
    "LeaseConformance",
    "RunQueueConformance",
]


class LeaseConformance:
    """Leases: exclusive, fenced by token, taken over only once expired."""

    pytestmark = pytest.mark.anyio

    async def test_declares_leases(self, saver: Any) -> None:
        assert saver.supports(Capability.LEASES)
        assert isinstance(saver, LeaseStore)

    async def test_late_lease_not_taken_over_renews_and_writes(self, saver: Any) -> None:
        """A run that merely ran late (its lease expired, nobody took the thread) keeps it:
        its writes and its renewal succeed with the same token; only a take-over fences it."""
        late = await saver.acquire_lease("t", "slow", 0.2, graph="g")
        await saver.commit(
            record("t", "c000001"), single_blob("c000001"), expected_head=None, lease=late
        )
        await anyio.sleep(0.35)
        await saver.put_writes("t", "", "c000001", [WriteRecord("task", 0, "x", b"1")], lease=late)
        await saver.commit(
            record("t", "c000002", "c000001"),
            single_blob("c000002"),
            expected_head="c000001",
            lease=late,
        )
        renewed = await saver.renew_lease(late, 30)
        assert renewed.token == late.token and renewed.expires_at > time.time() + 20
        with pytest.raises(ThreadBusyError):
            await saver.acquire_lease("t", "other", 30)
        loaded = await saver.load("t")
        assert loaded is not None and loaded.record.checkpoint_id == "c000002"
        first = await saver.load("t", "", "c000001")
        assert first is not None and [w.data for w in first.writes] == [b"1"]

    async def test_lease_is_exclusive_until_released(self, saver: Any) -> None:
        lease = await saver.acquire_lease("t", "w1", 30, graph="g")
        assert (lease.thread_id, lease.owner, lease.graph) == ("t", "w1", "g")
        assert lease.expires_at > time.time()
        with pytest.raises(ThreadBusyError) as busy:
            await saver.acquire_lease("t", "w2", 30)
        assert busy.value.holder == "w1" and busy.value.thread_id == "t"
        await saver.release_lease(lease)
        second = await saver.acquire_lease("t", "w2", 30)
        assert second.token == lease.token + 1
        other = await saver.acquire_lease("other", "w1", 30)
        assert other.thread_id == "other"

    async def test_only_one_of_many_concurrent_acquires_wins(self, saver: Any) -> None:
        wins: list[int] = []
        busy: list[str] = []

        async def grab(i: int) -> None:
            try:
                await saver.acquire_lease("race", f"w{i}", 30)
                wins.append(i)
            except ThreadBusyError:
                busy.append(f"w{i}")

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(grab, i)
        assert len(wins) == 1 and len(busy) == 19

    async def test_expired_lease_is_taken_over_and_fenced(self, saver: Any) -> None:
        old = await saver.acquire_lease("t", "dead", 0.2, graph="g")
        await saver.commit(
            record("t", "c000001"), single_blob("c000001"), expected_head=None, lease=old
        )
        await anyio.sleep(0.3)
        expired = await saver.expired_leases()
        assert [(e.thread_id, e.token) for e in expired] == [("t", old.token)]
        assert await saver.expired_leases(graph="other") == []
        new = await saver.acquire_lease("t", "alive", 30)
        assert new.token == old.token + 1
        assert await saver.expired_leases() == []
        with pytest.raises(LeaseLostError):
            await saver.commit(
                record("t", "c000002", "c000001"),
                single_blob("c000002"),
                expected_head="c000001",
                lease=old,
            )
        with pytest.raises(LeaseLostError):
            await saver.put_writes(
                "t", "", "c000001", [WriteRecord("task", 0, "x", b"1")], lease=old
            )
        with pytest.raises(LeaseLostError):
            await saver.renew_lease(old, 30)
        loaded = await saver.load("t")
        assert loaded is not None and loaded.record.checkpoint_id == "c000001"
        assert loaded.writes == []
        await saver.commit(
            record("t", "c000002", "c000001"),
            single_blob("c000002"),
            expected_head="c000001",
            lease=new,
        )
        renewed = await saver.renew_lease(new, 60)
        assert renewed.token == new.token and renewed.expires_at > new.expires_at
        await saver.release_lease(old)  # a stale release changes nothing
        with pytest.raises(ThreadBusyError):
            await saver.acquire_lease("t", "third", 30)

    async def test_released_lease_refuses_writes(self, saver: Any) -> None:
        lease = await saver.acquire_lease("t", "w", 30)
        await saver.release_lease(lease)
        with pytest.raises(LeaseLostError):
            await saver.commit(
                record("t", "c000001"), single_blob("c000001"), expected_head=None, lease=lease
            )
        assert await saver.load("t") is None
        assert await saver.expired_leases() == []


class InboxConformance:
    """The inbox index: replaced with writes, listed and paged from the index."""

    pytestmark = pytest.mark.anyio

    async def test_declares_inbox(self, saver: Any) -> None:
        assert saver.supports(Capability.INBOX)
        assert isinstance(saver, InboxStore)

    async def test_inbox_is_replaced_with_writes_and_listed_from_the_index(
        self, saver: Any
    ) -> None:
        lease = await saver.acquire_lease("a", "w", 30)
        await saver.commit(
            record("a", "c000001"),
            single_blob("c000001"),
            expected_head=None,
            lease=lease,
            inbox=[entry("a", "i1", created="1"), entry("a", "i2", node="review", created="2")],
        )
        await saver.commit(
            record("b", "c000002"),
            single_blob("c000002"),
            expected_head=None,
            inbox=[entry("b", "i3", created="3", deadline=100.0, on_timeout=b"t", graph="g")],
        )
        listed = await saver.list_inbox()
        assert [e.interrupt_id for e in listed] == ["i1", "i2", "i3"]
        assert listed[2] == entry(
            "b", "i3", created="3", deadline=100.0, on_timeout=b"t", graph="g"
        )
        assert [e.interrupt_id for e in await saver.list_inbox(InboxQuery(thread_id="a"))] == [
            "i1",
            "i2",
        ]
        assert [e.interrupt_id for e in await saver.list_inbox(InboxQuery(node="review"))] == ["i2"]
        assert [e.interrupt_id for e in await saver.list_inbox(InboxQuery(graph="g"))] == ["i3"]
        assert [e.interrupt_id for e in await saver.list_inbox(InboxQuery(due_before=200.0))] == [
            "i3"
        ]
        assert await saver.list_inbox(InboxQuery(due_before=50.0)) == []
        page1 = await saver.list_inbox(InboxQuery(limit=2))
        last = page1[-1]
        page2 = await saver.list_inbox(
            InboxQuery(after=(last.created_at, last.thread_id, last.interrupt_id))
        )
        assert [e.interrupt_id for e in page1 + page2] == ["i1", "i2", "i3"]
        await saver.put_writes(
            "a",
            "",
            "c000001",
            [WriteRecord("t", 0, "x", b"1")],
            lease=lease,
            inbox=[entry("a", "i2")],
        )
        assert [e.interrupt_id for e in await saver.list_inbox(InboxQuery(thread_id="a"))] == ["i2"]
        await saver.put_writes("a", "", "c000001", [WriteRecord("t", 1, "x", b"2")], lease=lease)
        assert [e.interrupt_id for e in await saver.list_inbox(InboxQuery(thread_id="a"))] == ["i2"]
        await saver.commit(
            record("a", "c000003", "c000001"),
            single_blob("c000003"),
            expected_head="c000001",
            lease=lease,
            inbox=[],
        )
        assert [e.interrupt_id for e in await saver.list_inbox()] == ["i3"]
        await saver.delete_thread("b")
        assert await saver.list_inbox() == []

    async def test_inbox_is_unchanged_when_a_fenced_write_is_refused(self, saver: Any) -> None:
        lease = await saver.acquire_lease("a", "w", 30)
        await saver.commit(
            record("a", "c000001"),
            single_blob("c000001"),
            expected_head=None,
            lease=lease,
            inbox=[entry("a", "i1")],
        )
        await saver.release_lease(lease)
        with pytest.raises(LeaseLostError):
            await saver.put_writes("a", "", "c000001", [], lease=lease, inbox=[])
        assert [e.interrupt_id for e in await saver.list_inbox()] == ["i1"]


class RunQueueConformance:
    """The run queue: oldest first, one running request per thread, reclaims."""

    pytestmark = pytest.mark.anyio

    async def test_declares_run_queue(self, saver: Any) -> None:
        assert saver.supports(Capability.RUN_QUEUE)
        assert isinstance(saver, RunQueueStore)

    async def test_queue_claims_oldest_one_per_thread_and_finishes(self, saver: Any) -> None:
        await saver.enqueue(request("r1", "t1", "1"))
        await saver.enqueue(request("r2", "t1", "2"))
        await saver.enqueue(request("r3", "t2", "3"))
        await saver.enqueue(request("r4", "t3", "4", queue="other"))
        first = await saver.claim_request("q", "w1", 30)
        assert first is not None and (first.id, first.status, first.owner, first.attempts) == (
            "r1",
            "running",
            "w1",
            1,
        )
        second = await saver.claim_request("q", "w2", 30)
        assert second is not None and second.id == "r3"  # r2's thread already has a running request
        assert await saver.claim_request("q", "w3", 30) is None
        assert await saver.finish_request("r1", "w2", "done") is False  # not the owner
        assert await saver.finish_request("r1", "w1", "done", result=b"ok") is True
        done = await saver.get_request("r1")
        assert done is not None and (done.status, done.result) == ("done", b"ok")
        third = await saver.claim_request("q", "w3", 30)
        assert third is not None and third.id == "r2"
        assert await saver.finish_request("r2", "w3", "failed", error="boom") is True
        failed = await saver.get_request("r2")
        assert failed is not None and (failed.status, failed.error) == ("failed", "boom")
        assert await saver.get_request("missing") is None
        other = await saver.claim_request("other", "w1", 30)
        assert other is not None and other.payload == b"p-r4"

    async def test_queue_reclaims_expired_claims_and_cancels_queued(self, saver: Any) -> None:
        await saver.enqueue(request("r1", "t1", "1"))
        await saver.enqueue(request("r2", "t2", "2"))
        claimed = await saver.claim_request("q", "dead", 0.2)
        assert claimed is not None and claimed.id == "r1"
        assert await saver.renew_claim("r1", "someone-else", 30) is False
        assert await saver.finish_request("r2", None, "cancelled") is True
        assert (
            await saver.finish_request("r1", None, "cancelled") is False
        )  # running: not cancelled
        await anyio.sleep(0.3)
        again = await saver.claim_request("q", "alive", 30)
        assert again is not None and (again.id, again.owner, again.attempts) == ("r1", "alive", 2)
        assert await saver.renew_claim("r1", "alive", 30) is True
        assert await saver.finish_request("r1", "dead", "done") is False
        assert await saver.finish_request("r1", "alive", "queued") is True  # given back
        back = await saver.get_request("r1")
        assert back is not None and back.status == "queued" and back.owner is None
        cancelled = await saver.get_request("r2")
        assert cancelled is not None and cancelled.status == "cancelled"

    async def test_list_requests_newest_first_filtered_and_paged(self, saver: Any) -> None:
        """`list_requests` shows every request whatever its status, with its attempts, owner
        and error (what an operator needs to see a failed or quarantined request)."""
        await saver.enqueue(request("r1", "t1", "1"))
        await saver.enqueue(request("r2", "t2", "2"))
        await saver.enqueue(request("r3", "t1", "3", queue="other"))
        await saver.enqueue(request("r4", "t3", "4"))
        assert await saver.claim_request("q", "w1", 30) is not None  # r1
        assert await saver.finish_request("r1", "w1", "failed", error="boom") is True
        running = await saver.claim_request("q", "w2", 30)
        assert running is not None and running.id == "r2"

        listed = await saver.list_requests()
        assert [r.id for r in listed] == ["r4", "r3", "r2", "r1"]
        assert all(r.damaged is None for r in listed)
        [failed] = await saver.list_requests(RunQuery(status="failed"))
        assert (failed.id, failed.error, failed.attempts, failed.owner) == ("r1", "boom", 1, "w1")
        [busy] = await saver.list_requests(RunQuery(status="running"))
        assert (busy.id, busy.owner, busy.attempts) == ("r2", "w2", 1)
        assert busy.claim_expires is not None and busy.claim_expires > time.time()
        assert [r.id for r in await saver.list_requests(RunQuery(thread_id="t1"))] == ["r3", "r1"]
        assert [r.id for r in await saver.list_requests(RunQuery(queue="other"))] == ["r3"]
        both = RunQuery(thread_id="t1", status="queued")
        assert [r.id for r in await saver.list_requests(both)] == ["r3"]
        page = await saver.list_requests(RunQuery(limit=2))
        assert [r.id for r in page] == ["r4", "r3"]
        rest = await saver.list_requests(RunQuery(before=run_order(page[-1]), limit=2))
        assert [r.id for r in rest] == ["r2", "r1"]
        assert await saver.list_requests(RunQuery(before=run_order(rest[-1]))) == []
        assert await saver.list_requests(RunQuery(limit=0)) == []
        assert await saver.list_requests(RunQuery(thread_id="nobody")) == []

    async def test_wait_for_work_wakes_up(self, saver: Any) -> None:
        with anyio.fail_after(5):
            await saver.wait_for_work("q", 0.05)  # nothing queued: returns at the timeout

            async def later() -> None:
                await anyio.sleep(0.1)
                await saver.enqueue(request("r1", "t1", "1"))

            async with anyio.create_task_group() as tg:
                tg.start_soon(later)
                await saver.wait_for_work("q", 3)
                assert await saver.get_request("r1") is not None

    async def test_given_back_request_does_not_count_an_attempt(self, saver: Any) -> None:
        """A request given back (`queued`: its thread was busy) was not attempted: the next
        claim counts attempt 1 again, so only claims that never finished add up (a worker
        quarantines a request that crashed it too often)."""
        await saver.enqueue(request("r1", "t1", "1"))
        first = await saver.claim_request("q", "w1", 30)
        assert first is not None and first.attempts == 1
        assert await saver.finish_request("r1", "w1", "queued") is True
        again = await saver.claim_request("q", "w2", 30)
        assert again is not None and again.attempts == 1


class ChangeFeedConformance:
    """Change notification: a waiter wakes when its thread changes."""

    pytestmark = pytest.mark.anyio

    async def test_declares_change_notification(self, saver: Any) -> None:
        assert saver.supports(Capability.CHANGE_NOTIFICATION)
        assert isinstance(saver, ChangeFeed)

    async def test_wait_for_change_wakes_up(self, saver: Any) -> None:
        with anyio.fail_after(5):
            await saver.wait_for_change("t1", 0.05)  # nothing changes: returns at the timeout

            async def later() -> None:
                await anyio.sleep(0.1)
                await saver.commit(
                    record("t1", "c000001"), single_blob("c000001"), expected_head=None
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(later)
                await saver.wait_for_change("t1", 3)
                assert await saver.load("t1") is not None
