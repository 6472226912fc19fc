"""Listing namespaces: prefix/suffix patterns with "*" labels, depth truncation, order, pages."""

from __future__ import annotations

from collections.abc import Iterable

from hitl_async.store.base import ListNamespacesOp
from hitl_async.store.codec import split_namespace

__all__ = ["list_matching", "path_matches"]


def path_matches(namespace: tuple[str, ...], match_type: str, path: tuple[str, ...]) -> bool:
    """Whether `namespace` starts (prefix) or ends (suffix) with `path`, "*" matching any label."""
    if len(namespace) < len(path):
        return False
    if match_type == "prefix":
        part = namespace[: len(path)]
    else:
        part = namespace[len(namespace) - len(path) :]
    return all(p == "*" or p == label for p, label in zip(path, part, strict=True))


def list_matching(names: Iterable[str], op: ListNamespacesOp) -> list[tuple[str, ...]]:
    """The result of `op` over stored namespace texts: matched, truncated to `max_depth` (then
    de-duplicated), sorted label by label, then paged by `offset`/`limit`."""
    conditions = [(c[0], tuple(c[1])) for c in op.match_conditions or () if c[1]]
    found: set[tuple[str, ...]] = set()
    for name in names:
        ns = split_namespace(name)
        if all(path_matches(ns, kind, path) for kind, path in conditions):
            found.add(ns[: op.max_depth] if op.max_depth is not None else ns)
    return sorted(found)[op.offset : op.offset + op.limit]
