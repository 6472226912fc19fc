"""Node caching in a run: the key of a task's input under its node's `CachePolicy`, reusing
cached writes instead of running the node, and caching the writes of a node that finished."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hitl_async._task import own_input, update_chunk
from hitl_async.managed.base import StepWindow

if TYPE_CHECKING:
    from hitl_async._run import Run
    from hitl_async._task import Task
    from hitl_async.cache.base import BaseCache, FullKey
    from hitl_async.types import CachePolicy

__all__ = ["CACHE_NS_WRITES", "cache_key", "cache_namespace", "store_cached", "use_cached"]

CACHE_NS_WRITES = "__pregel_ns_writes"
"""First part of the namespace of cached node writes (LangGraph's name)."""


def cache_namespace(fn: Any, name: str) -> tuple[str, ...]:
    """The cache namespace of a node or task: its function's identity and its name."""
    target = getattr(fn, "func", fn)
    module = getattr(target, "__module__", None) or "__dynamic__"
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return (CACHE_NS_WRITES, f"{module}.{qualname}", name)


def cache_key(ns: tuple[str, ...], policy: CachePolicy, *args: Any, **kwargs: Any) -> FullKey:
    """The cache key of a call with these arguments under `policy`."""
    raw = policy.key_func(*args, **kwargs)
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    return ns, hashlib.blake2b(data, digest_size=16).hexdigest()


async def use_cached(run: Run, tasks: Sequence[Task], view: Callable[[], Any]) -> None:
    """Give each task of a cached node its key; a task whose writes are cached finishes with
    them at once (`updates` shows it marked cached, as LangGraph does) instead of running."""
    cache: BaseCache[Any] | None = run.cache
    if cache is None:
        return
    nodes = run.graph.builder.nodes
    keyed: dict[FullKey, Task] = {}
    for t in tasks:
        spec = nodes.get(t.name)
        if spec is None or spec.cache_policy is None or t.done:
            continue
        if t.spec.push:
            arg = t.spec.arg
        elif spec.input_schema is not None:  # keyed on what the node sees, as LangGraph
            arg = own_input(run.graph, spec, run.cp.values, StepWindow(run.steps_run, run.limit))
        else:
            arg = view()
        t.cache_key = cache_key(cache_namespace(spec.fn, t.name), spec.cache_policy, arg)
        if not t.answers:  # an answered task runs to take its answers; its result is cached
            keyed[t.cache_key] = t
    if not keyed:
        return
    for key, writes in (await cache.aget(list(keyed))).items():
        t = keyed[key]
        t.writes = [tuple(w) for w in writes]
        t.update = update_chunk([w for w in t.writes if w[0][:2] != "__"])
        t.done = t.finished_now = t.cached = True
        if "updates" in run.modes:
            run.emit("updates", {t.name: t.update, "__metadata__": {"cached": True}})


async def store_cached(run: Run, t: Task) -> None:
    """Cache the writes of a task of a cached node that finished (not one that paused or
    failed: a hit skips the node, so only a finished result may stand for it)."""
    if run.cache is None or t.cache_key is None or not t.finished_now or t.cached:
        return
    policy = run.graph.builder.nodes[t.name].cache_policy
    assert policy is not None
    await run.cache.aset({t.cache_key: (t.writes, policy.ttl)})
