"""The HTTP example (examples/http_app) runs as its README documents: the Starlette app under
uvicorn and the worker, two processes sharing a PostgreSQL schema, driven over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from apps.services import POSTGRES_URL, require_package, require_service

from hitl_async import connect

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
WAIT = 60.0  # upper bound of every wait; none is a timing assertion


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Example:
    """The running example: its URL, its two processes and where they log."""

    url: str
    app: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    logs: Path

    def output(self) -> str:
        """Both processes' logs, for assertion messages."""
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')}" for p in sorted(self.logs.iterdir())
        )


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit within a bound."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture
async def example(tmp_path: Path) -> AsyncIterator[Example]:
    """uvicorn serving examples.http_app.app:app and examples.http_app.worker, both on a fresh
    PostgreSQL schema that is dropped afterwards."""
    require_package("hitl_async_postgres", "drivers/postgres")
    require_service("postgres", POSTGRES_URL)
    for module in ("httpx", "starlette", "uvicorn"):
        require_package(module, "'.[test]'")
    schema = f"t_http_{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "HITL_STORE": POSTGRES_URL, "HITL_STORE_SCHEMA": schema}
    env.pop("PYTHONPATH", None)
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        worker = spawn(["-m", "examples.http_app.worker", "--poll", "0.2"], env, logs / "worker")
        procs.append(worker)
        app = spawn(
            [
                "-m",
                "uvicorn",
                "examples.http_app.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env,
            logs / "app",
        )
        procs.append(app)
        running = Example(f"http://127.0.0.1:{port}", app, worker, logs)
        await wait_until_serving(running)
        yield running
    finally:
        for proc in procs:
            stop(proc)
        saver = connect(POSTGRES_URL, schema=schema)
        try:
            await saver.destroy()
        finally:
            await saver.aclose()


async def wait_until_serving(example: Example) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=example.url, timeout=5) as client:
        with anyio.move_on_after(WAIT):
            while True:
                for proc in (example.app, example.worker):
                    assert proc.poll() is None, f"a process exited early\n{example.output()}"
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.1)
    pytest.fail(f"the app did not start within {WAIT} s\n{example.output()}")


async def finished_run(client: Any, example: Example, thread_id: str, run_id: str) -> Any:
    """GET /runs/... until the run is done, failed or cancelled; its JSON."""
    with anyio.move_on_after(WAIT):
        while True:
            response = await client.get(f"/runs/{thread_id}/{run_id}")
            assert response.status_code == 200, response.text
            run = response.json()
            if run["status"] in ("done", "failed", "cancelled"):
                return run
            await anyio.sleep(0.05)
    pytest.fail(f"run {run_id} did not finish within {WAIT} s\n{example.output()}")


async def test_expense_is_paused_answered_over_http_and_paid_by_the_worker(
    example: Example,
) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=example.url, timeout=10) as client:
        # Bad bodies are refused before anything is queued.
        bad = await client.post("/expenses", json={"amount": -5, "who": "ada"})
        assert bad.status_code == 400, bad.text
        assert bad.json()["error"] == "bad_body"
        assert (await client.post("/expenses", content=b"not json")).status_code == 400

        # A new expense: the worker runs it until the manager is asked.
        started = await client.post("/expenses", json={"amount": 250.0, "who": "ada"})
        assert started.status_code == 202, started.text
        thread_id, run_id = started.json()["thread_id"], started.json()["run_id"]
        first = await finished_run(client, example, thread_id, run_id)
        assert first["status"] == "done", first
        assert first["paused"] is True

        state = (await client.get(f"/expenses/{thread_id}")).json()
        assert state["paused"] is True and state["next"] == ["approve"]
        assert state["values"] == {"amount": 250.0, "who": "ada", "status": "checked"}
        (pending,) = state["interrupts"]
        interrupt_id = pending["id"]
        assert pending["value"]["question"] == "Approve 250.00 for ada?"

        inbox = (await client.get("/inbox")).json()["pending"]
        mine = [p for p in inbox if p["thread_id"] == thread_id]
        assert [(p["interrupt_id"], p["node"]) for p in mine] == [(interrupt_id, "approve")]

        # The engine's strict errors come back as 409 with its message; nothing is queued.
        unknown = uuid.uuid4().hex
        conflict = await client.post(
            f"/expenses/{thread_id}/decision", json={"interrupt_id": unknown, "answer": "yes"}
        )
        assert conflict.status_code == 409, conflict.text
        body = conflict.json()
        assert body["error"] == "UnknownInterruptError"
        assert unknown in body["detail"] and "not pending" in body["detail"]
        assert body["pending"] == [interrupt_id]
        assert (await client.get(f"/expenses/{thread_id}")).json()["interrupts"] == [pending]

        # Unknown threads and malformed decisions are client errors too.
        missing = await client.get(f"/expenses/{uuid.uuid4().hex}")
        assert missing.status_code == 404 and missing.json()["error"] == "unknown_thread"
        missing = await client.post(
            f"/expenses/{uuid.uuid4().hex}/decision",
            json={"interrupt_id": interrupt_id, "answer": "yes"},
        )
        assert missing.status_code == 404, missing.text
        malformed = await client.post(
            f"/expenses/{thread_id}/decision", json={"interrupt_id": interrupt_id, "answer": 1}
        )
        assert malformed.status_code == 400, malformed.text

        # The manager approves; the worker resumes the thread and pays.
        decided = await client.post(
            f"/expenses/{thread_id}/decision", json={"interrupt_id": interrupt_id, "answer": "yes"}
        )
        assert decided.status_code == 202, decided.text
        second = await finished_run(client, example, thread_id, decided.json()["run_id"])
        assert second["status"] == "done", second
        assert second["paused"] is False
        assert second["result"]["status"] == "paid"

        final = (await client.get(f"/expenses/{thread_id}")).json()
        assert final["done"] is True and final["interrupts"] == []
        assert final["values"]["status"] == "paid"
        assert final["values"]["payment"]["amount"] == 250.0
        assert final["values"]["payment"]["to"] == "ada"
        inbox = (await client.get("/inbox", params={"thread_id": thread_id})).json()
        assert inbox == {"pending": []}

        # Answering again is a conflict: the thread is no longer paused.
        again = await client.post(
            f"/expenses/{thread_id}/decision", json={"interrupt_id": interrupt_id, "answer": "no"}
        )
        assert again.status_code == 409
        assert again.json()["error"] == "NoPendingInterruptError"

    # Both processes stop gracefully on SIGTERM (uvicorn re-raises the signal once it has shut
    # down, so the app's exit status is -SIGTERM; its log shows the lifespan shutdown ran).
    for proc, codes in ((example.worker, {0}), (example.app, {0, -signal.SIGTERM})):
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a process ignored SIGTERM\n{example.output()}")
        assert code in codes, example.output()
    assert "worker stopped after 2 run(s)" in (example.logs / "worker").read_text()
    assert "Application shutdown complete" in (example.logs / "app").read_text()
