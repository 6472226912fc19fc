"""`hitl serve` and `hitl worker --config` processes for tests: bound to 127.0.0.1 on free
ports, on a fresh store (a SQLite file, a PostgreSQL schema or a Redis key prefix), and always
stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "tests" / "apps" / "serve" / "langgraph.json"
STARTUP = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def store_url(kind: str, tmp: Path) -> str:
    """A fresh store of `kind` (skipped, or failed in CI, when its server is missing)."""
    for module in ("fastapi", "sse_starlette", "uvicorn", "langgraph_sdk"):
        require_package(module, "'.[test]'")
    if kind == "sqlite":
        require_package("hitl_async_sqlite", "drivers/sqlite")
        return f"sqlite:///{tmp / 'serve.db'}"
    if kind == "postgres":
        require_package("hitl_async_postgres", "drivers/postgres")
        require_service("postgres", POSTGRES_URL)
        sep = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{sep}schema=t_srv_{uuid.uuid4().hex[:12]}"
    require_package("hitl_async_redis", "drivers/redis")
    require_service("redis", REDIS_URL)
    sep = "&" if "?" in REDIS_URL else "?"
    return f"{REDIS_URL}{sep}prefix=tsrv{uuid.uuid4().hex[:12]}"


@dataclass
class Proc:
    """A started process, its log file and (for API servers) its URL."""

    args: list[str]
    log: Path
    popen: subprocess.Popen[bytes]
    url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within a bound."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=15)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=15)


def _spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> Proc:
    environ = {**os.environ, **(env or {})}
    environ.pop("HITL_STORE", None)
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "hitl_async.cli", *args],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Proc(args, log, popen)


def wait_ready(proc: Proc, timeout: float = STARTUP) -> None:
    assert proc.url is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"hitl serve exited ({proc.popen.returncode}):\n{proc.output()}")
        try:
            if httpx.get(f"{proc.url}/ok", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"hitl serve not ready after {timeout} s:\n{proc.output()}")


def start_server(
    store: str,
    log: Path,
    *,
    config: Path = CONFIG,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Proc:
    port = free_port()
    args = ["serve", "--config", str(config), "--store", store, "--port", str(port)]
    proc = _spawn([*args, *(extra or [])], log, env)
    proc.url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc)
    except BaseException:
        proc.kill()
        raise
    return proc


def start_worker(store: str, log: Path, *, config: Path = CONFIG, concurrency: int = 8) -> Proc:
    args = ["worker", "--config", str(config), "--store", store]
    return _spawn([*args, "--concurrency", str(concurrency), "--poll", "0.2"], log)


@contextmanager
def serving(
    store: str, tmp: Path, *, extra: list[str] | None = None, config: Path = CONFIG
) -> Iterator[Proc]:
    """One `hitl serve` process (executing its runs) on `store`, stopped afterwards."""
    proc = start_server(
        store, tmp / f"serve-{uuid.uuid4().hex[:6]}.log", extra=extra, config=config
    )
    try:
        yield proc
    finally:
        proc.stop()


def drop_store(url: str) -> None:
    """Delete what a test stored (PostgreSQL schema, Redis prefix); SQLite files go with tmp."""
    if url.startswith("sqlite"):
        return
    import anyio

    from hitl_async import connect
    from hitl_async.server.records import open_records

    async def drop() -> None:
        saver = connect(url)
        records = open_records(url)
        try:
            await records.destroy()
            await saver.destroy()
        finally:
            await records.aclose()
            await saver.aclose()

    anyio.run(drop)
