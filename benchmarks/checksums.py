"""What the CRC32C on every stored value costs: bytes and µs per superstep.

    python -m benchmarks.checksums [--reps 7] [--steps 2000]

Runs a 10-node chain (as the chain10 workload) and a 10-turn MessagesState chat on the
in-memory saver (no I/O, so the serializer's share is as large as it gets), once with the
default serializer and once with the same serializer minus the checksum frame, interleaved,
and prints the medians: values serialized per step, bytes the frame adds per step, µs per step
both ways, and the difference. Also the raw cost per value for small and 1 MiB values.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from typing_extensions import TypedDict

from hitl_async import InMemorySaver, Serializer
from hitl_async.graph import START, StateGraph
from hitl_async.serde import HEADER_SIZE


class Counting(Serializer):
    """The default serializer, counting the values it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.values = 0

    def dumps(self, value: Any, *, channel: str | None = None) -> bytes:
        self.values += 1
        return super().dumps(value, channel=channel)


class Unchecked(Serializer):
    """The same encoding without the frame: what storing cost before checksums."""

    def dumps(self, value: Any, *, channel: str | None = None) -> bytes:
        try:
            out: bytes = self._pack(value)
        except Exception as exc:  # first sight of a langchain-core class, deep values, ...
            out = self._dumps_slow(value, channel, exc)
        return out

    def loads(self, data: bytes) -> Any:
        try:
            return self._unpack(data)
        except Exception as exc:
            return self._loads_slow(data, exc)


class Chain(TypedDict):
    n: int


def chain(serializer: Any) -> Any:
    async def bump(state: Chain) -> dict[str, int]:
        return {"n": state["n"] + 1}

    builder = StateGraph(Chain)
    previous = START
    for i in range(10):
        builder.add_node(f"n{i}", bump)
        builder.add_edge(previous, f"n{i}")
        previous = f"n{i}"
    return builder.compile(checkpointer=InMemorySaver(), serializer=serializer)


def chat(serializer: Any) -> Any:
    from langchain_core.messages import AIMessage

    from hitl_async.graph import MessagesState

    async def reply(state: Any) -> dict[str, Any]:
        return {"messages": [AIMessage(f"answer {len(state['messages'])}")]}

    builder = StateGraph(MessagesState)
    previous = START
    for i in range(10):
        builder.add_node(f"turn{i}", reply)
        builder.add_edge(previous, f"turn{i}")
        previous = f"turn{i}"
    return builder.compile(checkpointer=InMemorySaver(), serializer=serializer)


WORKLOADS: dict[str, tuple[Callable[[Any], Any], Callable[[], Any]]] = {
    "chain10": (chain, lambda: {"n": 0}),
    "chat10 (MessagesState)": (chat, lambda: {"messages": [("user", "hi")]}),
}


async def per_step_us(
    make: Callable[[Any], Any], value: Callable[[], Any], serializer: Any, runs: int
) -> float:
    graph = make(serializer)
    started = time.perf_counter()
    for i in range(runs):
        await graph.ainvoke(value(), {"configurable": {"thread_id": f"t{i}"}})
    return (time.perf_counter() - started) / (runs * 10) * 1e6


def raw_us(serializer: Any, value: Any, reps: int) -> float:
    data = serializer.dumps(value)
    started = time.perf_counter()
    for _ in range(reps):
        serializer.loads(serializer.dumps(value))
    assert serializer.loads(data) == value
    return (time.perf_counter() - started) / reps * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--runs", type=int, default=200, help="graph runs per repetition")
    args = parser.parse_args()
    print(
        "| workload | values per step | bytes added per step | µs/step with CRC | without | cost |"
    )
    print("|---|---|---|---|---|---|")
    for name, (make, value) in WORKLOADS.items():
        counting = Counting()
        await per_step_us(make, value, counting, 1)
        values = counting.values / 10
        with_crc: list[float] = []
        without: list[float] = []
        for _ in range(args.reps):
            with_crc.append(await per_step_us(make, value, Serializer(), args.runs))
            without.append(await per_step_us(make, value, Unchecked(), args.runs))
        a, b = statistics.median(with_crc), statistics.median(without)
        print(
            f"| {name} | {values:.1f} | {values * HEADER_SIZE:.0f} | {a:.1f} | {b:.1f} | "
            f"{a - b:+.1f} µs ({(a - b) / b:+.1%}) |"
        )
    print()
    print("| value | µs per dumps+loads with CRC | without | cost |")
    print("|---|---|---|---|")
    for label, value, reps in (
        (
            "small dict (5 keys)",
            {"amount": 5.0, "who": "ada", "ok": True, "n": 3, "tags": [1, 2]},
            20000,
        ),
        ("1 MiB bytes", os.urandom(1 << 20), 200),
    ):
        a = statistics.median(raw_us(Serializer(), value, reps) for _ in range(args.reps))
        b = statistics.median(raw_us(Unchecked(), value, reps) for _ in range(args.reps))
        print(f"| {label} | {a:.2f} | {b:.2f} | {a - b:+.2f} µs |")


if __name__ == "__main__":
    asyncio.run(main())
