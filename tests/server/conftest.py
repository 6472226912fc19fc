"""One `hitl serve` process per store kind and test module (started once, always stopped)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apps.servers import Proc, drop_store, serving, store_url

STORES = ["sqlite", "postgres", "redis"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=STORES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proc]:
    """`hitl serve` over the test graphs (tests/apps/serve) on a fresh store of each kind."""
    tmp = tmp_path_factory.mktemp(f"serve-{request.param}")
    url = store_url(request.param, tmp)
    try:
        with serving(url, tmp) as proc:
            proc.extra["store"] = url
            proc.extra["kind"] = request.param
            yield proc
    finally:
        drop_store(url)
