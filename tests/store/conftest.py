"""Store fixtures: every test here runs on each driver (memory, SQLite, PostgreSQL, Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from apps.embeddings import CharEmbeddings
from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service

from hitl_async.store import BackendStore, InMemoryStore, connect_store

STORE_DRIVERS = ["memory", "sqlite", "postgres", "redis"]

MakeStore = Callable[..., BackendStore]


def store_factory(kind: str, tmp_path: Path) -> tuple[MakeStore, list[BackendStore]]:
    """A function making stores of one driver (each with its own tables), and the list of what
    it made (to destroy afterwards)."""
    made: list[BackendStore] = []

    def make(**options: Any) -> BackendStore:
        if kind == "memory":
            store: BackendStore = InMemoryStore(**options)
        elif kind == "sqlite":
            require_package("hitl_async_sqlite", "drivers/sqlite")
            store = connect_store(f"sqlite:///{tmp_path / f'store{len(made)}.db'}", **options)
        elif kind == "postgres":
            require_package("hitl_async_postgres", "drivers/postgres")
            require_service("postgres", POSTGRES_URL)
            store = connect_store(POSTGRES_URL, schema=f"s_{uuid.uuid4().hex[:12]}", **options)
        else:
            require_package("hitl_async_redis", "drivers/redis")
            require_service("redis", REDIS_URL)
            store = connect_store(REDIS_URL, prefix=f"s{uuid.uuid4().hex[:12]}", **options)
        made.append(store)
        return store

    return make, made


@pytest.fixture(params=STORE_DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_store(driver: str, tmp_path: Path) -> AsyncIterator[MakeStore]:
    """Make stores of the test's driver (with options); destroyed and closed afterwards."""
    make, made = store_factory(driver, tmp_path)
    yield make
    for store in made:
        destroy = getattr(store, "destroy", None)
        if destroy is not None:
            await destroy()
        await store.aclose()


@pytest.fixture
async def store(make_store: MakeStore) -> BackendStore:
    """A fresh, set-up store of each driver."""
    s = make_store()
    await s.setup()
    return s


@pytest.fixture
def embeddings() -> CharEmbeddings:
    return CharEmbeddings(dims=64)


@pytest.fixture
async def vector_store(make_store: MakeStore, embeddings: CharEmbeddings) -> BackendStore:
    """A store of each driver with semantic search over the whole value."""
    s = make_store(index={"embed": embeddings, "dims": embeddings.dims})
    await s.setup()
    return s
