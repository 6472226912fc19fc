"""Checking a store batch before it runs: `plan_batch` validates every operation (a bad one
raises and nothing runs) and records what each needs, so the batch's reads and writes can be
grouped into as few round trips as the backend allows.
"""

from __future__ import annotations

from typing import Any

from hitl_async.store.base import (
    GetOp,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchOp,
)
from hitl_async.store.codec import (
    check_key,
    check_namespace,
    check_prefix,
    checked_prefix_text,
    checked_text,
    encode_value,
    namespace_text,
)
from hitl_async.store.errors import InvalidStoreRequestError
from hitl_async.store.filters import Condition, compiled

__all__ = ["BatchPlan", "PlannedOps", "known_plan", "literal_prefix", "plan_batch"]


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidStoreRequestError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class BatchPlan:
    """A checked batch: what each operation needs, by position."""

    __slots__ = ("gets", "lists", "puts", "results", "searches")

    def __init__(self, size: int) -> None:
        self.results: list[Result] = [None] * size
        self.gets: list[tuple[int, str, str, bool]] = []
        self.searches: list[tuple[int, SearchOp, str, tuple[Condition, ...]]] = []
        self.lists: list[tuple[int, ListNamespacesOp]] = []
        self.puts: dict[tuple[str, str], tuple[PutOp, bytes | None]] = {}

    @classmethod
    def merged(cls, plans: list[BatchPlan]) -> BatchPlan:
        """One plan for the operations of `plans` run as one batch, in their order."""
        out = cls(0)
        for plan in plans:
            at = len(out.results)
            out.gets += [(at + i, ns, key, refresh) for i, ns, key, refresh in plan.gets]
            out.searches += [(at + i, op, pre, cond) for i, op, pre, cond in plan.searches]
            out.lists += [(at + i, op) for i, op in plan.lists]
            for ref, put in plan.puts.items():
                out.puts.pop(ref, None)
                out.puts[ref] = put
            out.results += plan.results
        return out


class PlannedOps(list[Op]):
    """A call's operations with the plan made when the call was checked."""

    plan: BatchPlan


def plan_batch(ops: list[Op]) -> BatchPlan:
    """Check every operation of a batch (raising `InvalidStoreRequestError` on the first bad one,
    before anything runs) and say what each needs, by position."""
    plan = BatchPlan(len(ops))
    for i, op in enumerate(ops):
        if isinstance(op, GetOp):
            key = op.key
            if type(key) is not str or "\x00" in key:
                key = check_key(key)
            plan.gets.append((i, checked_text(op.namespace), key, bool(op.refresh_ttl)))
        elif isinstance(op, PutOp):
            ns = check_namespace(op.namespace)
            key = check_key(op.key)
            data = None if op.value is None else encode_value(ns, key, op.value)
            if (
                op.index is not False
                and op.index is not None
                and not (isinstance(op.index, list) and all(isinstance(p, str) for p in op.index))
            ):
                raise InvalidStoreRequestError(
                    f"put index= is False, None or a list of field paths, got {op.index!r}"
                )
            if op.ttl is not None and (
                isinstance(op.ttl, bool) or not isinstance(op.ttl, int | float) or op.ttl <= 0
            ):
                raise InvalidStoreRequestError(
                    f"ttl is a positive number of minutes or None, got {op.ttl!r}"
                )
            ref = (namespace_text(ns), key)
            plan.puts.pop(ref, None)  # the last put of an item wins, in its own position
            plan.puts[ref] = (op, data)
        elif isinstance(op, SearchOp):
            prefix = checked_prefix_text(op.namespace_prefix)
            if type(op.limit) is not int or op.limit < 0:
                _count("search limit", op.limit, 0)
            if type(op.offset) is not int or op.offset < 0:
                _count("search offset", op.offset, 0)
            if op.query is not None and not isinstance(op.query, str):
                raise InvalidStoreRequestError(f"search query is a str, got {op.query!r}")
            conditions = compiled(op.filter)[0]
            plan.searches.append((i, op, prefix, conditions))
        elif isinstance(op, ListNamespacesOp):
            for cond in op.match_conditions or ():
                if not isinstance(cond, MatchCondition | tuple) or cond[0] not in (
                    "prefix",
                    "suffix",
                ):
                    raise InvalidStoreRequestError(
                        f"match condition {cond!r} is not MatchCondition('prefix'|'suffix', path)"
                    )
                check_prefix(cond[1], wildcards=True, what=cond[0])
            if op.max_depth is not None:
                _count("list_namespaces max_depth", op.max_depth, 1)
            _count("list_namespaces limit", op.limit, 0)
            _count("list_namespaces offset", op.offset, 0)
            plan.lists.append((i, op))
        else:
            raise InvalidStoreRequestError(
                f"unknown store operation {op!r}; use GetOp, PutOp, SearchOp or ListNamespacesOp"
            )
    return plan


def known_plan(ops: list[Op]) -> BatchPlan | None:
    """The plan made when `ops` (one call's, or a batch of calls') were checked, if any."""
    if isinstance(ops, PlannedOps):
        return ops.plan
    parts = getattr(ops, "parts", None)
    if parts and all(isinstance(part, PlannedOps) for part in parts):
        return BatchPlan.merged([part.plan for part in parts])
    return None


def literal_prefix(op: ListNamespacesOp) -> str:
    """The namespace text every listed namespace must start with: the labels of the prefix
    condition before its first wildcard (lets a backend narrow its scan)."""
    for cond in op.match_conditions or ():
        if cond[0] == "prefix":
            labels: list[str] = []
            for label in cond[1]:
                if label == "*":
                    break
                labels.append(label)
            return namespace_text(tuple(labels))
    return ""
