"""Shared fixtures: the checkpoint stores every engine and driver test runs on.

PostgreSQL and Redis tests talk to real servers (HITL_TEST_POSTGRES_URL, HITL_TEST_REDIS_URL,
defaulting to the local ones). Without a server those tests are skipped with the reason, except
under CI=true, where a missing service fails the run.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from apps.services import IN_CI, POSTGRES_URL, REDIS_URL, require_package, require_service
from apps.stores import SharedStore

from hitl_async import StoreLostError

__all__ = ["IN_CI", "POSTGRES_URL", "REDIS_URL", "require_package", "require_service"]

DRIVERS = ["memory", "sqlite", "postgres", "redis"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


SaverFactory = Callable[[], object]


@pytest.fixture(params=DRIVERS)
async def saver(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[object]:
    """A fresh, set-up saver of each driver; closed after the test."""
    kind = request.param
    if kind == "memory":
        from hitl_async import InMemorySaver

        yield InMemorySaver()
        return
    from hitl_async import connect

    if kind == "sqlite":
        require_package("hitl_async_sqlite", "drivers/sqlite")
        url = f"sqlite:///{tmp_path / 'checkpoints.db'}"
        options: dict[str, object] = {}
    elif kind == "postgres":
        require_package("hitl_async_postgres", "drivers/postgres")
        require_service("postgres", POSTGRES_URL)
        url = POSTGRES_URL
        options = {"schema": f"t_{uuid.uuid4().hex[:12]}"}
    else:
        require_package("hitl_async_redis", "drivers/redis")
        require_service("redis", REDIS_URL)
        url = REDIS_URL
        options = {"prefix": f"t{uuid.uuid4().hex[:12]}"}
    store = connect(url, **options)
    await store.setup()
    try:
        yield store
    finally:
        await store.destroy() if hasattr(store, "destroy") else None
        await store.aclose()


SHARED = ["sqlite", "postgres", "redis"]


@pytest.fixture(params=SHARED)
async def shared_store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[SharedStore]:
    """A fresh store on every driver that processes can share; destroyed afterwards."""
    kind = request.param
    if kind == "sqlite":
        require_package("hitl_async_sqlite", "drivers/sqlite")
        store = SharedStore(kind, f"sqlite:///{tmp_path / 'shared.db'}", {})
    elif kind == "postgres":
        require_package("hitl_async_postgres", "drivers/postgres")
        require_service("postgres", POSTGRES_URL)
        store = SharedStore(kind, POSTGRES_URL, {"schema": f"t_{uuid.uuid4().hex[:12]}"})
    else:
        require_package("hitl_async_redis", "drivers/redis")
        require_service("redis", REDIS_URL)
        store = SharedStore(kind, REDIS_URL, {"prefix": f"t{uuid.uuid4().hex[:12]}"})
    saver = store.connect()
    await saver.setup()
    try:
        yield store
    finally:
        with contextlib.suppress(StoreLostError):  # (a test that made its store vanish)
            await saver.destroy()
        await saver.aclose()
