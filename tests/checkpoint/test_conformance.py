"""Driver conformance on every built-in driver: `hitl_async.testing`'s suite, run through the
`saver` fixture (memory, sqlite, postgres, redis), exactly as a third-party driver runs it."""

from __future__ import annotations

from hitl_async.testing import FullConformance


class TestConformance(FullConformance):
    """Storage, leases, the inbox, the run queue, change notification and the node cache, on
    every driver."""
