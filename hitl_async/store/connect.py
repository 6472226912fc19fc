"""`connect_store(url)`: a long-term memory store on the same URLs as checkpoints.

Drivers register a factory under the entry-point group `hitl_async.stores` (the entry point's
name is the URL scheme, its value a callable `factory(url, **options) -> BaseStore`), next to
their checkpoint saver's entry point in `hitl_async.drivers`. Only `memory://` is built in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from hitl_async.errors import DriverNotFoundError
from hitl_async.store.driver import BackendStore
from hitl_async.store.memory import InMemoryStore

__all__ = ["STORE_ENTRY_POINT_GROUP", "connect_store"]

STORE_ENTRY_POINT_GROUP = "hitl_async.stores"

_PACKAGES = {
    "sqlite": "hitl-async-sqlite",
    "postgresql": "hitl-async-postgres",
    "postgres": "hitl-async-postgres",
    "redis": "hitl-async-redis",
    "rediss": "hitl-async-redis",
}


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=STORE_ENTRY_POINT_GROUP):
        found.setdefault(ep.name.lower(), ep)
    return found


def _memory(url: str, **options: Any) -> BackendStore:
    return InMemoryStore(**options)


def connect_store(url: str, **options: Any) -> BackendStore:
    """A store for `url` (`memory://`, `sqlite:///app.db`, `postgresql://...`, `redis://...`),
    returned at once; it connects and creates its tables on first use (or `await
    store.setup()`); `await store.aclose()` when done.

    Options: `index=` (semantic search, see `IndexConfig`), `ttl=` (a `TTLConfig`), and the
    driver's own (`schema=` for PostgreSQL, `prefix=` for Redis, as for checkpoints). Raises
    `DriverNotFoundError` naming the package to install when no driver handles the scheme.
    """
    scheme, sep, _ = url.partition(":")
    scheme = scheme.strip().lower()
    if not sep or not scheme:
        raise DriverNotFoundError(
            "connect_store() needs a URL such as sqlite:///app.db or memory://; "
            f"{url!r} has no scheme"
        )
    if scheme == "memory":
        return _memory(url, **options)
    ep = _entry_points().get(scheme)
    if ep is None:
        package = _PACKAGES.get(scheme)
        hint = f"pip install {package}" if package else "schemes: memory, sqlite, postgresql, redis"
        raise DriverNotFoundError(f"no hitl-async store driver handles {scheme}:// ({hint})")
    factory: Callable[..., BackendStore] = ep.load()
    return factory(url, **options)
