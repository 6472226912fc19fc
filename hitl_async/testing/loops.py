"""Conformance of a store's `any_loop` claim: a store whose class says `any_loop = True` is
used from several event loops of the process at once (the sync API's per-thread loops, the
engine threads of all-sync `ainvoke` runs), so commits made from one loop's thread are read
from another's and both keep working afterwards. A store without the claim passes trivially."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest

from hitl_async.checkpoint.base import BaseSaver
from hitl_async.testing.records import blob, cid, rec

__all__ = ["AnyLoopConformance"]


def _in_own_loop(fn: Any) -> Any:
    """Run the coroutine function `fn` in a new event loop of a new thread; its result."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def main() -> None:
        try:
            out.append(asyncio.run(fn()))
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


class AnyLoopConformance:
    """A store claiming `any_loop` works from several event loops, before and after."""

    pytestmark = pytest.mark.anyio

    async def test_any_loop_claim_holds(self, saver: BaseSaver) -> None:
        if not getattr(saver, "any_loop", False):
            return  # no claim: the engine keeps every run in the caller's loop
        r1 = rec("loops", cid(1), {"a": "1"})
        await saver.commit(r1, [blob("a", "1")], expected_head=None)

        async def elsewhere() -> str | None:
            loaded = await saver.load("loops", "")
            assert loaded is not None
            r2 = rec("loops", cid(2), {"a": "2"}, parent=cid(1))
            await saver.commit(r2, [blob("a", "2")], expected_head=cid(1))
            return loaded.record.checkpoint_id

        seen = await anyio.to_thread.run_sync(_in_own_loop, elsewhere)
        assert seen == cid(1)
        again = await saver.load("loops", "")  # this loop's connections still work
        assert again is not None and again.record.checkpoint_id == cid(2)
        assert await anyio.to_thread.run_sync(_in_own_loop, lambda: saver.load("loops", ""))
