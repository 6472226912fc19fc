"""Checking a built graph before it compiles: every edge, conditional edge, destination and
breakpoint names a node, and the graph has an entry point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hitl_async.constants import END, START
from hitl_async.errors import GraphValidationError, InvalidConfigError
from hitl_async.types import All

if TYPE_CHECKING:
    from hitl_async.graph.state import StateGraph

__all__ = ["check_run_breakpoints", "validate_graph"]


def validate_graph(
    builder: StateGraph,
    interrupt_before: Sequence[str] | All | None = None,
    interrupt_after: Sequence[str] | All | None = None,
) -> None:
    """Raise `GraphValidationError` naming the first bad node or edge."""
    known = set(builder.nodes)

    def check(name: str, where: str, *, allow_end: bool, found: str = "") -> None:
        if name in known or (allow_end and name == END):
            return
        valid = sorted(known) + ([END] if allow_end else [])
        # `found`: LangGraph's wording for an edge's end, kept for code matching on it
        lead = f"Found edge {found} at unknown node {name!r}: " if found else ""
        raise GraphValidationError(f"{lead}{where}: unknown node {name!r}; nodes are {valid}")

    has_entry = START in builder.branches
    for start, end in builder.edge_order:
        if start != START:
            check(start, f"edge {start!r} -> {end!r}", allow_end=False, found="starting")
        else:
            has_entry = True
        check(end, f"edge {start!r} -> {end!r}", allow_end=True, found="ending")
    for starts, end in builder.waiting_edges:
        for s in starts:
            check(s, f"edge {list(starts)!r} -> {end!r}", allow_end=False, found="starting")
        check(end, f"edge {list(starts)!r} -> {end!r}", allow_end=True, found="ending")
    for source, branches in builder.branches.items():
        if source != START:
            check(source, f"conditional edge from {source!r}", allow_end=False)
        for b in branches:
            for target in (b.path_map or {}).values():
                check(target, f"conditional edge from {source!r} (path_map)", allow_end=True)
    for spec in builder.nodes.values():
        for d in spec.destinations:
            check(d, f"node {spec.name!r} destinations", allow_end=True)
    if not has_entry:
        raise GraphValidationError(
            "Graph must have an entrypoint: the graph has no entry point; add an edge from "
            "START, e.g. "
            "builder.add_edge(START, 'first_node')"
        )
    for label, names in (
        ("interrupt_before", interrupt_before),
        ("interrupt_after", interrupt_after),
    ):
        if names is None or names == "*":
            continue
        for n in names:
            check(n, label, allow_end=False)


def check_run_breakpoints(
    builder: StateGraph,
    interrupt_before: Sequence[str] | All | None,
    interrupt_after: Sequence[str] | All | None,
    thread_id: object = None,
) -> None:
    """Raise `InvalidConfigError` for a run's `interrupt_before`/`interrupt_after` naming no
    node of the graph (or a str other than "*"), before anything runs: a typo would otherwise
    let the run go past the node it was meant to stop at (LangGraph checks only compile's)."""
    for label, names in (
        ("interrupt_before", interrupt_before),
        ("interrupt_after", interrupt_after),
    ):
        if names is None or names == "*":
            continue
        valid = sorted(builder.nodes)
        where = "" if thread_id is None else f"thread {thread_id!r}: "
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise InvalidConfigError(
                f"{where}{label}={names!r}: expected a list of node names or '*'; nodes are {valid}"
            )
        for n in names:
            if not isinstance(n, str) or n not in builder.nodes:
                raise InvalidConfigError(
                    f"{where}{label}: unknown node {n!r}; nodes are {valid} (or pass '*' for all)"
                )
