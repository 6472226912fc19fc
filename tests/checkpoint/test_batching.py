"""The group-commit helper drivers share: concurrent calls coalesce, each gets its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from hitl_async.checkpoint.batching import Batcher


class _Store:
    """A fake round trip (no driver involved): records each batch, answers after a pause."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.sent: list[list[int]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, batch: list[int]) -> list[int | BaseException]:
        self.sent.append(batch)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return [ValueError(f"bad {n}") if n < 0 else n * 10 for n in batch]


def test_a_lone_call_goes_out_at_once_as_a_batch_of_one() -> None:
    async def main() -> None:
        store = _Store()
        batcher: Batcher[int, int] = Batcher(store.send, concurrency=2)
        assert await batcher.submit(3) == 30
        assert store.sent == [[3]]
        assert (batcher.batches, batcher.requests) == (1, 1)

    asyncio.run(main())


def test_concurrent_calls_share_round_trips_and_get_their_own_results() -> None:
    async def main() -> None:
        store = _Store()
        batcher: Batcher[int, int] = Batcher(store.send, concurrency=2, max_batch=16)
        results = await asyncio.gather(*(batcher.submit(n) for n in range(50)))
        assert results == [n * 10 for n in range(50)]
        assert sorted(n for b in store.sent for n in b) == list(range(50))
        assert store.most_in_flight <= 2
        assert max(len(b) for b in store.sent) <= 16
        assert batcher.batches == len(store.sent) < 10
        assert batcher.requests == 50

    asyncio.run(main())


def test_an_error_of_one_request_reaches_only_its_caller() -> None:
    async def main() -> None:
        store = _Store()
        batcher: Batcher[int, int] = Batcher(store.send, concurrency=1)
        outcomes = await asyncio.gather(
            *(batcher.submit(n) for n in (1, -2, 3)), return_exceptions=True
        )
        assert outcomes[0] == 10 and outcomes[2] == 30
        assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "bad -2"

    asyncio.run(main())


def test_a_failed_send_fails_every_request_of_its_batch_and_later_batches_still_go() -> None:
    async def main() -> None:
        calls = 0

        async def send(batch: list[int]) -> list[int]:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            if calls == 1:
                raise ConnectionError("store went away")
            return batch

        batcher: Batcher[int, int] = Batcher(send, concurrency=1)
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0)  # its batch is in flight; the next two queue behind it
        later = [asyncio.ensure_future(batcher.submit(n)) for n in (1, 2)]
        with pytest.raises(ConnectionError, match="store went away"):
            await first
        assert await asyncio.gather(*later) == [1, 2]
        assert calls == 2

    asyncio.run(main())


def test_a_wrong_number_of_outcomes_is_an_error_not_a_hang() -> None:
    async def main() -> None:
        async def send(batch: list[int]) -> list[int]:
            return batch[:-1]

        batcher: Batcher[int, int] = Batcher(send)
        with pytest.raises(RuntimeError, match="returned 0 outcomes for 1 requests"):
            await asyncio.wait_for(batcher.submit(1), 5)

    asyncio.run(main())


def test_a_cancelled_caller_stops_waiting_and_the_others_are_answered() -> None:
    async def main() -> None:
        store = _Store(delay=0.05)
        batcher: Batcher[int, int] = Batcher(store.send, concurrency=1)
        busy = asyncio.ensure_future(batcher.submit(1))  # holds the only slot
        await asyncio.sleep(0)
        doomed = asyncio.ensure_future(batcher.submit(2))
        kept = asyncio.ensure_future(batcher.submit(3))
        await asyncio.sleep(0)
        doomed.cancel()
        assert await busy == 10 and await kept == 30
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await batcher.wait_idle()
        assert sorted(n for b in store.sent for n in b) == [1, 2, 3]

    asyncio.run(main())


def test_bad_settings_are_refused() -> None:
    async def send(batch: list[int]) -> list[int]:
        return batch

    with pytest.raises(ValueError, match="concurrency >= 1"):
        Batcher(send, concurrency=0)
