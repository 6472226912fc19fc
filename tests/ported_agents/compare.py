"""Comparing a ported agent's record with LangGraph's: the normalisations for hitl-async's
documented deliberate differences (each names its README row), and the differences still open.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["KNOWN_DIFFERENCES", "by_label", "normalise"]

Record = list[list[Any]]

_KNOWN = re.compile(r"\[I know: ([^\]]*)\]")


def _store_order(record: Record) -> Record:
    """README, store "Differences from LangGraph 1.2.22", row "`search()` order without a
    query": LangGraph's InMemoryStore lists items in insertion order, ours newest update first;
    the search results (and the facts the agent joins from them) are compared as sets."""

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return _KNOWN.sub(lambda m: "[I know: " + ", ".join(sorted(m[1].split(", "))) + "]", v)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v

    out = []
    for label, value in record:
        value = walk(value)
        if label.startswith("store."):
            value = sorted(value, key=repr)
        out.append([label, value])
    return out


def _gathered_interrupts(record: Record) -> Record:
    """README, "Differences from LangGraph" under Porting, row "`interrupt()` in `@task` calls
    awaited together": LangGraph reports the first task's question and asks the next after it
    is answered, hitl-async reports them all at once; compared as the questions asked, over
    every round."""
    out = []
    for label, value in _store_order(record):
        if label == "together.asked":
            value = [sorted(q for round_ in value for q in round_)]
        out.append([label, value])
    return out


NORMALISERS: dict[str, Callable[[Record], Record]] = {
    "memory_store": _store_order,
    "publish_workflow": _gathered_interrupts,
}

KNOWN_DIFFERENCES: dict[str, dict[str, str]] = {}
"""Per agent, labels whose values still differ from LangGraph's, with why (none left today):
the test asserts they still differ, so a fix removes its entry."""


def normalise(agent: str, record: Record) -> Record:
    """`record` with the agent's deliberate differences normalised (the same on both sides)."""
    return NORMALISERS.get(agent, lambda r: r)(record)


def by_label(record: Record) -> dict[str, list[Any]]:
    """The record's values grouped by label, in order (a label missing on one side compares
    as an empty list, so one missing entry does not shift every later one)."""
    out: dict[str, list[Any]] = {}
    for label, value in record:
        out.setdefault(label, []).append(value)
    return out
