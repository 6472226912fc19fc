"""The metric instruments hitl-async records (OpenTelemetry metrics API), made once per process
when a meter provider is configured. Attributes are low-cardinality on purpose: the graph, the
node, the queue, the store's operation and system, an outcome; never a thread id."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

__all__ = ["METRICS", "Instruments"]

_STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                  0.5, 1.0, 2.5, 5.0, 10.0)  # fmt: skip
_NODE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                 300.0, 900.0)  # fmt: skip
_HUMAN_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 8 * 3600.0, 86400.0,
                  3 * 86400.0, 7 * 86400.0)  # fmt: skip
_QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)

METRICS: dict[str, str] = {
    "hitl.run.started": "runs started (attribute hitl.graph)",
    "hitl.run.finished": "runs that ended without an error: hitl.run.outcome is completed, "
    "paused (waiting for a human) or abandoned (the caller stopped reading the stream)",
    "hitl.run.failed": "runs that raised (attribute error.type)",
    "hitl.steps": "supersteps run",
    "hitl.node.duration": "seconds a node task ran, retries included (hitl.node, "
    "hitl.node.outcome: done, interrupted, failed)",
    "hitl.interrupt.wait": "seconds between an interrupt() and the resume that answered it",
    "hitl.queue.depth": "run requests queued minus those claimed or cancelled (an up-down "
    "counter each process adds to; their sum is the depth)",
    "hitl.queue.claim.latency": "seconds from asubmit() to a worker claiming the request",
    "hitl.lease.lost": "leases lost (hitl.lease.loss: renew, when a renewal found the lease "
    "taken; fencing, when a write was refused for a stale fencing token)",
    "db.client.operation.duration": "seconds per store call (db.system, db.operation.name, "
    "error.type on failure)",
}
"""Every metric hitl-async records, with what it counts (the README lists them too)."""


class Instruments:
    """The instruments of one meter."""

    __slots__ = (
        "claim_latency",
        "interrupt_wait",
        "lease_lost",
        "node_duration",
        "queue_depth",
        "runs_failed",
        "runs_finished",
        "runs_started",
        "steps",
        "store_duration",
    )

    def __init__(self, meter: Meter) -> None:
        def doc(name: str) -> str:
            return METRICS[name]

        self.runs_started = meter.create_counter(
            "hitl.run.started", unit="{run}", description=doc("hitl.run.started")
        )
        self.runs_finished = meter.create_counter(
            "hitl.run.finished", unit="{run}", description=doc("hitl.run.finished")
        )
        self.runs_failed = meter.create_counter(
            "hitl.run.failed", unit="{run}", description=doc("hitl.run.failed")
        )
        self.steps = meter.create_counter(
            "hitl.steps", unit="{step}", description=doc("hitl.steps")
        )
        self.node_duration = meter.create_histogram(
            "hitl.node.duration",
            unit="s",
            description=doc("hitl.node.duration"),
            explicit_bucket_boundaries_advisory=_NODE_BUCKETS,
        )
        self.interrupt_wait = meter.create_histogram(
            "hitl.interrupt.wait",
            unit="s",
            description=doc("hitl.interrupt.wait"),
            explicit_bucket_boundaries_advisory=_HUMAN_BUCKETS,
        )
        self.queue_depth = meter.create_up_down_counter(
            "hitl.queue.depth", unit="{request}", description=doc("hitl.queue.depth")
        )
        self.claim_latency = meter.create_histogram(
            "hitl.queue.claim.latency",
            unit="s",
            description=doc("hitl.queue.claim.latency"),
            explicit_bucket_boundaries_advisory=_QUEUE_BUCKETS,
        )
        self.lease_lost = meter.create_counter(
            "hitl.lease.lost", unit="{lease}", description=doc("hitl.lease.lost")
        )
        self.store_duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description=doc("db.client.operation.duration"),
            explicit_bucket_boundaries_advisory=_STORE_BUCKETS,
        )
