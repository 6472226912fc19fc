"""The driver conformance suite, for any checkpoint store (ours and third parties').

A driver package runs it against itself without copying anything: subclass the classes of the
capabilities the store declares in a pytest module of its own and provide a `saver` fixture
that yields a fresh, set-up store (and cleans it up):

    import pytest
    from hitl_async.testing import LeaseConformance, StorageConformance

    class TestMyStore(StorageConformance, LeaseConformance):
        @pytest.fixture
        async def saver(self):
            store = MyStore("...")
            await store.setup()
            yield store
            await store.destroy()
            await store.aclose()

`StorageConformance` is for every store; `LeaseConformance`, `InboxConformance`,
`RunQueueConformance`, `ChangeFeedConformance` and `CacheConformance` for the capabilities of
`hitl_async.checkpoint.capabilities` the store implements (`FullConformance`: all of them);
`AnyLoopConformance` checks a store whose class declares `any_loop = True`. The
tests are async and run on anyio's pytest plugin (installed with anyio). `records` has the
record builders the tests use, for a driver's own tests.
"""

from __future__ import annotations

from hitl_async.testing.cache import CacheConformance
from hitl_async.testing.coordination import (
    ChangeFeedConformance,
    InboxConformance,
    LeaseConformance,
    RunQueueConformance,
)
from hitl_async.testing.loops import AnyLoopConformance
from hitl_async.testing.storage import (
    CheckpointConformance,
    StorageConformance,
    StoreMaintenanceConformance,
)

__all__ = [
    "AnyLoopConformance",
    "CacheConformance",
    "ChangeFeedConformance",
    "CheckpointConformance",
    "FullConformance",
    "InboxConformance",
    "LeaseConformance",
    "RunQueueConformance",
    "StorageConformance",
    "StoreMaintenanceConformance",
]


class FullConformance(
    StorageConformance,
    AnyLoopConformance,
    LeaseConformance,
    InboxConformance,
    RunQueueConformance,
    ChangeFeedConformance,
    CacheConformance,
):
    """Every capability: what the built-in drivers (memory, sqlite, postgresql, redis) pass."""
