"""The `hitl` command, driven as a user would: subprocesses on real stores (SQLite files in
tmp_path; PostgreSQL and Redis when reachable), JSON output parsed, exit codes checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_service

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
APP = "apps.cli_app"


def hitl(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m hitl_async.cli ARGS` in `cwd`, with tests/ on PYTHONPATH."""
    environ = {k: v for k, v in os.environ.items() if k != "HITL_STORE"}
    environ.update({"PYTHONPATH": str(TESTS), "COLUMNS": "200", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "hitl_async.cli", *args],
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = hitl(*args, cwd=cwd, env=env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def ok_json(*args: str, cwd: Path) -> Any:
    return json.loads(ok(*args, "--json", cwd=cwd))


def fails(code: int, *args: str, cwd: Path) -> str:
    """Run a command that must fail with `code` and one `error: ...` line; return the line."""
    done = hitl(*args, cwd=cwd)
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


class Store:
    """A store the CLI processes share: the flags naming it, and its cleanup."""

    def __init__(self, url: str, options: dict[str, str] | None = None) -> None:
        self.url = url
        self.options = options or {}

    @property
    def flags(self) -> list[str]:
        out = ["--store", self.url]
        for key, value in self.options.items():
            out += ["--store-option", f"{key}={value}"]
        return out

    def connect(self) -> Any:
        from hitl_async import connect

        return connect(self.url, **self.options)

    def destroy(self) -> None:
        async def go() -> None:
            saver = self.connect()
            try:
                await saver.destroy()
            finally:
                await saver.aclose()

        anyio.run(go)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each kind: a SQLite file; a random PostgreSQL schema (in the URL's
    query); a random Redis key prefix (through --store-option)."""
    kind = request.param
    if kind == "sqlite":
        yield Store(f"sqlite:///{tmp_path / 'cli.db'}")
        return
    if kind == "postgres":
        require_service("postgres", POSTGRES_URL)
        sep = "&" if "?" in POSTGRES_URL else "?"
        shared = Store(f"{POSTGRES_URL}{sep}schema=cli_{uuid.uuid4().hex[:12]}")
    else:
        require_service("redis", REDIS_URL)
        shared = Store(REDIS_URL, {"prefix": f"cli{uuid.uuid4().hex[:12]}"})
    try:
        yield shared
    finally:
        shared.destroy()


# -- the whole flow, on every store ---------------------------------------------------------------


def test_run_inbox_resume_show(store: Store, tmp_path: Path) -> None:
    s = store.flags
    first = ok_json(
        "run",
        f"{APP}:builder",
        "--thread",
        "a",
        "--input",
        '{"item": "laptop", "amount": 1200}',
        *s,
        cwd=tmp_path,
    )
    assert first["status"] == "paused"
    assert first["next"] == ["review"]
    [asked] = first["interrupts"]
    assert asked["node"] == "review"
    assert asked["value"] == {"question": "Approve laptop for $1200.00?"}
    human = ok(
        "run",
        f"{APP}:graph",
        "-t",
        "b",
        "--input",
        '{"item": "desk", "amount": 80}',
        *s,
        cwd=tmp_path,
    )
    assert "paused: review asks" in human
    assert f"-m hitl_async.cli resume {APP}:graph --thread b" in human

    inbox = ok_json("inbox", *s, cwd=tmp_path)
    assert [(p["thread_id"], p["node"]) for p in inbox] == [("a", "review"), ("b", "review")]
    assert inbox[0]["interrupt_id"] == asked["id"]
    assert inbox[0]["value"] == asked["value"]
    page = ok_json("inbox", "--limit", "1", *s, cwd=tmp_path)
    assert [p["thread_id"] for p in page] == ["a"]
    rest = ok_json("inbox", "--after", page[0]["cursor"], *s, cwd=tmp_path)
    assert [p["thread_id"] for p in rest] == ["b"]
    assert [p["thread_id"] for p in ok_json("inbox", "-t", "b", *s, cwd=tmp_path)] == ["b"]
    assert ok_json("inbox", "--node", "book", *s, cwd=tmp_path) == []
    table = ok("inbox", *s, cwd=tmp_path)
    assert asked["id"] in table and "Approve laptop" in table

    # another process answers, by id, through a different form of the same graph
    done = ok_json(
        "resume",
        f"{APP}:make_graph",
        "--thread",
        "a",
        "--id",
        asked["id"],
        "--value",
        '"yes"',
        *s,
        cwd=tmp_path,
    )
    assert done["status"] == "done"
    assert done["values"]["outcome"] == "approved: laptop"
    assert [list(e) for e in done["events"]] == [["review"], ["book"]]

    shown = ok_json("show", "--thread", "a", *s, cwd=tmp_path)
    assert shown["status"] == "done"
    assert shown["next"] == [] and shown["interrupts"] == []
    assert shown["values"] == {
        "item": "laptop",
        "amount": 1200,
        "decision": "approved",
        "outcome": "approved: laptop",
    }
    through_graph = ok_json("show", f"{APP}:builder", "--thread", "a", *s, cwd=tmp_path)
    assert through_graph["values"] == shown["values"]
    assert through_graph["checkpoint_id"] == shown["checkpoint_id"]
    paused = ok_json("show", "-t", "b", *s, cwd=tmp_path)
    assert paused["status"] == "paused" and paused["next"] == ["review"]
    assert [p["thread_id"] for p in ok_json("inbox", *s, cwd=tmp_path)] == ["b"]
    assert "status      paused" in ok("show", "-t", "b", *s, cwd=tmp_path)

    again = fails(4, "resume", f"{APP}:builder", "-t", "a", "--value", '"yes"', *s, cwd=tmp_path)
    assert "thread 'a' has no pending interrupt" in again


# -- demo ----------------------------------------------------------------------------------------


def test_demo_with_answer_on_the_default_store(tmp_path: Path) -> None:
    out = ok("demo", "--answer", "no", cwd=tmp_path)
    assert "Paused at ('manager',): Approve vendor-contract for $5000.00?" in out
    assert "To answer from another process instead" in out
    assert out.rstrip().endswith("Outcome: REJECTED: vendor-contract")
    assert (tmp_path / "hitl.db").exists()  # sqlite:///hitl.db in the working directory


def test_demo_resumes_from_another_process(tmp_path: Path) -> None:
    env = {"HITL_STORE": f"sqlite:///{tmp_path / 'env.db'}"}
    first = ok("demo", "--thread", "d1", "--stop-at-pause", cwd=tmp_path, env=env)
    assert "-m hitl_async.cli demo --store sqlite:///" in first
    assert "--thread d1 --resume-only --answer yes" in first
    second = ok("demo", "--resume-only", "--thread", "d1", "--answer", "yes", cwd=tmp_path, env=env)
    assert second.rstrip().endswith("Outcome: EXECUTED: vendor-contract")
    assert not (tmp_path / "hitl.db").exists()
    threads = json.loads(ok("threads", "--json", cwd=tmp_path, env=env))
    assert [(t["thread_id"], t["status"]) for t in threads] == [("d1", "done")]
    done = hitl("demo", "--resume-only", "--thread", "d1", "--answer", "yes", cwd=tmp_path, env=env)
    assert done.returncode == 4
    assert "is not waiting for anyone" in done.stdout


def test_demo_without_a_terminal_answers_yes(tmp_path: Path) -> None:
    out = ok("demo", "--store", "memory://", cwd=tmp_path)
    assert "stdin is not a terminal" in out
    assert out.rstrip().endswith("Outcome: EXECUTED: vendor-contract")


# -- reading commands ----------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> list[str]:
    """A SQLite store with thread `done` (finished) and thread `open` (paused)."""
    flags = ["--store", f"sqlite:///{tmp_path / 'r.db'}"]
    ok(
        "run",
        f"{APP}:builder",
        "-t",
        "done",
        "--input",
        '{"item": "pen", "amount": 2}',
        *flags,
        cwd=tmp_path,
    )
    ok("resume", f"{APP}:builder", "-t", "done", "--value", "true", *flags, cwd=tmp_path)
    ok(
        "run",
        f"{APP}:builder",
        "-t",
        "open",
        "--input",
        '{"item": "car", "amount": 9}',
        *flags,
        cwd=tmp_path,
    )
    return flags


def test_history_newest_first(db: list[str], tmp_path: Path) -> None:
    history = ok_json("history", "--thread", "done", *db, cwd=tmp_path)
    assert [h["step"] for h in history] == [2, 1, 0, -1]
    assert [h["metadata"]["source"] for h in history] == ["loop", "loop", "loop", "input"]
    assert [h["next"] for h in history] == [[], ["book"], ["review"], ["__start__"]]
    assert history[0]["values"]["outcome"] == "approved: pen"
    assert history[2]["status"] == "paused"  # the pause, since answered, as it was then
    assert history[1]["parent_checkpoint_id"] == history[2]["checkpoint_id"]
    through_graph = ok_json("history", f"{APP}:builder", "-t", "done", *db, cwd=tmp_path)
    assert [h["checkpoint_id"] for h in through_graph] == [h["checkpoint_id"] for h in history]
    assert [
        h["step"] for h in ok_json("history", "-t", "done", "--limit", "2", *db, cwd=tmp_path)
    ] == [2, 1]
    table = ok("history", "-t", "done", *db, cwd=tmp_path)
    assert history[0]["checkpoint_id"] in table and "approved: pen" in table


def test_threads(db: list[str], tmp_path: Path) -> None:
    threads = ok_json("threads", *db, cwd=tmp_path)
    assert sorted((t["thread_id"], t["status"], t["interrupts"]) for t in threads) == [
        ("done", "done", 0),
        ("open", "paused", 1),
    ]
    assert threads[0]["thread_id"] == "open"  # most recently updated first
    table = ok(*db, "threads", cwd=tmp_path)  # store options also go before the command
    assert "open" in table and "paused" in table


def test_prune(db: list[str], tmp_path: Path) -> None:
    pruned = ok_json("prune", "--thread", "done", "--keep-last", "1", *db, cwd=tmp_path)
    assert pruned == {"deleted": 3, "threads": {"done": 3}}
    [head] = ok_json("history", "-t", "done", *db, cwd=tmp_path)
    assert head["values"]["outcome"] == "approved: pen"
    kept = ok_json("prune", "--all-threads", "--older-than", "7d", *db, cwd=tmp_path)
    assert kept["deleted"] == 0 and set(kept["threads"]) == {"done", "open"}
    everything = ok_json("prune", "--all-threads", "--older-than", "0s", *db, cwd=tmp_path)
    assert everything["threads"] == {"done": 0, "open": 1}  # the heads stay
    assert ok_json("show", "-t", "open", *db, cwd=tmp_path)["status"] == "paused"
    assert "--older-than" in fails(
        2, "prune", "--all-threads", "--older-than", "7x", *db, cwd=tmp_path
    )
    assert "--keep-last" in fails(2, "prune", "--thread", "done", *db, cwd=tmp_path)
    assert "exactly one" in fails(2, "prune", "--keep-last", "1", *db, cwd=tmp_path)
    fails(3, "prune", "--thread", "nope", "--keep-last", "1", *db, cwd=tmp_path)


# -- errors: one line, documented exit codes -----------------------------------------------------


def test_bad_json_is_a_usage_error(db: list[str], tmp_path: Path) -> None:
    line = fails(2, "run", f"{APP}:builder", "-t", "x", "--input", "{item: 1}", *db, cwd=tmp_path)
    assert "--input is not valid JSON" in line
    line = fails(2, "resume", f"{APP}:builder", "-t", "open", "--value", "yes", *db, cwd=tmp_path)
    assert "--value is not valid JSON" in line
    assert "--after" in fails(2, "inbox", "--after", "nope", *db, cwd=tmp_path)
    assert "--id" in fails(
        2,
        "resume",
        f"{APP}:builder",
        "-t",
        "open",
        "--id",
        "nope",
        "--value",
        "1",
        *db,
        cwd=tmp_path,
    )
    assert "--store-option" in fails(2, "threads", "--store-option", "oops", *db, cwd=tmp_path)
    assert "Missing option '--thread'" in fails(2, "show", *db, cwd=tmp_path)
    assert ok_json("show", "-t", "open", *db, cwd=tmp_path)["status"] == "paused"  # unchanged


def test_strict_resume_errors_are_one_line(db: list[str], tmp_path: Path) -> None:
    line = fails(4, "resume", f"{APP}:builder", "-t", "done", "--value", '"yes"', *db, cwd=tmp_path)
    assert line.startswith("error: thread 'done' has no pending interrupt")
    line = fails(
        4,
        "resume",
        f"{APP}:builder",
        "-t",
        "open",
        "--id",
        "0" * 32,
        "--value",
        "1",
        *db,
        cwd=tmp_path,
    )
    assert "are not pending" in line
    line = fails(3, "resume", f"{APP}:builder", "-t", "ghost", "--value", "1", *db, cwd=tmp_path)
    assert "does not exist" in line
    fails(3, "show", "-t", "ghost", *db, cwd=tmp_path)
    fails(3, "history", "-t", "ghost", *db, cwd=tmp_path)
    fails(3, "run", f"{APP}:builder", "-t", "ghost", *db, cwd=tmp_path)  # nothing to continue


def test_graph_loading_errors(db: list[str], tmp_path: Path) -> None:
    args = ("-t", "x", "--input", "{}", *db)
    assert "no module named 'apps.nowhere'" in fails(
        2, "run", "apps.nowhere:graph", *args, cwd=tmp_path
    )
    assert "has no attribute 'nothing'" in fails(2, "run", f"{APP}:nothing", *args, cwd=tmp_path)
    assert "is an int (42)" in fails(2, "run", f"{APP}:answer", *args, cwd=tmp_path)
    assert "needs arguments" in fails(2, "run", f"{APP}:needs_arguments", *args, cwd=tmp_path)
    assert "MODULE:GRAPH" in fails(2, "run", APP, *args, cwd=tmp_path)


def test_store_errors(tmp_path: Path) -> None:
    assert "no hitl-async driver" in fails(2, "threads", "--store", "nosuch://x", cwd=tmp_path)
    assert "sqlite URLs have no host" in fails(
        2, "threads", "--store", "sqlite://h/x.db", cwd=tmp_path
    )
    assert "takes no options" in fails(
        2, "threads", "--store", "memory://", "--store-option", "a=1", cwd=tmp_path
    )
    assert "no SQLite store" in fails(5, "inbox", cwd=tmp_path)  # reading creates no file
    assert not (tmp_path / "hitl.db").exists()


def test_debug_adds_the_traceback(tmp_path: Path) -> None:
    done = hitl("--debug", "show", "-t", "x", "--store", "sqlite:///none.db", cwd=tmp_path)
    assert done.returncode == 5
    assert "Traceback" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("error: no SQLite store")


def test_help_documents_exit_codes(tmp_path: Path) -> None:
    out = ok("--help", cwd=tmp_path)
    for text in (
        "Exit codes",
        "2   usage error",
        "3   not found",
        "4   conflict",
        "5   store unavailable",
        "6   store lost",
        "7   corrupt data",
        "130 interrupted",
    ):
        assert text in out
    for command in (
        "demo",
        "run",
        "resume",
        "inbox",
        "show",
        "history",
        "threads",
        "prune",
        "worker",
        "runs",
    ):
        assert f"  {command} " in out
    assert ok(cwd=tmp_path) == out  # no arguments: the help


# -- worker and bench ----------------------------------------------------------------------------


@pytest.fixture(params=["postgres", "redis"])
def queue_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store with a run queue: the worker needs leases and a queue."""
    if request.param == "postgres":
        require_service("postgres", POSTGRES_URL)
        shared = Store(POSTGRES_URL, {"schema": f"cli_{uuid.uuid4().hex[:12]}"})
    else:
        require_service("redis", REDIS_URL)
        sep = "&" if "?" in REDIS_URL else "?"
        shared = Store(f"{REDIS_URL}{sep}prefix=cli{uuid.uuid4().hex[:12]}")
    try:
        yield shared
    finally:
        shared.destroy()


def test_worker_runs_queued_requests(queue_store: Store, tmp_path: Path) -> None:
    sys.path.insert(0, str(TESTS))
    try:
        from apps.cli_app import make_graph
    finally:
        sys.path.remove(str(TESTS))

    async def submit() -> str:
        saver = queue_store.connect()
        try:
            graph = make_graph().with_checkpointer(saver)
            handle = await graph.asubmit(
                {"item": "chair", "amount": 80}, {"configurable": {"thread_id": "w"}}
            )
            return handle.id
        finally:
            await saver.aclose()

    request_id = anyio.run(submit)
    out = ok(
        "worker",
        f"{APP}:make_graph",
        "--max-requests",
        "1",
        "--poll",
        "0.2",
        "--json",
        *queue_store.flags,
        cwd=tmp_path,
    )
    [line] = [json.loads(x) for x in out.splitlines()]
    assert line["request_id"] == request_id
    assert (line["thread_id"], line["status"]) == ("w", "paused")
    assert ok_json("show", "-t", "w", *queue_store.flags, cwd=tmp_path)["status"] == "paused"


def test_bench_is_not_a_command_of_the_installed_package(tmp_path: Path) -> None:
    """The benchmarks live in the repository (`python -m benchmarks` from a checkout); the
    installed package has no command that would need them."""
    line = fails(2, "bench", cwd=tmp_path)
    assert "bench" in line


def test_the_package_never_imports_from_the_checkout() -> None:
    """No module of hitl_async imports the repository's `benchmarks` or `tests`, nor edits
    `sys.path` to reach them."""
    import ast

    package = ROOT / "hitl_async"
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in ("benchmarks", "tests"), f"{path} imports {name}"
        assert 'import_module("benchmarks' not in path.read_text(encoding="utf-8"), path
