"""`hitl store ...` on the durable drivers: list, get, put, delete, sweep, and clear errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service

from hitl_async.cli import main


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    if request.param == "sqlite":
        require_package("hitl_async_sqlite", "drivers/sqlite")
        return ["--store", f"sqlite:///{tmp_path / 'cli.db'}"]
    if request.param == "postgres":
        require_package("hitl_async_postgres", "drivers/postgres")
        require_service("postgres", POSTGRES_URL)
        return ["--store", POSTGRES_URL, "--store-option", f"schema=c_{uuid.uuid4().hex[:10]}"]
    require_package("hitl_async_redis", "drivers/redis")
    require_service("redis", REDIS_URL)
    return ["--store", REDIS_URL, "--store-option", f"prefix=c{uuid.uuid4().hex[:10]}"]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_store_commands(store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    s = store_args
    assert (
        _run(capsys, *s, "store", "put", "users.alice", "m1", "--value", '{"text": "tea", "n": 1}')[
            0
        ]
        == 0
    )
    assert (
        _run(capsys, *s, "store", "put", "users.bob", "m1", "--value", '{"n": 2}', "--ttl", "60")[0]
        == 0
    )
    code, out, _ = _run(capsys, *s, "store", "namespaces")
    assert (code, out.split()) == (0, ["users.alice", "users.bob"])
    code, out, _ = _run(capsys, *s, "store", "namespaces", "--suffix", "bob", "--json")
    assert json.loads(out) == [["users", "bob"]]
    code, out, _ = _run(
        capsys, *s, "store", "items", "users", "--filter", '{"n": {"$gt": 1}}', "--json"
    )
    assert [(i["namespace"], i["key"], i["value"]) for i in json.loads(out)] == [
        (["users", "bob"], "m1", {"n": 2})
    ]
    code, out, _ = _run(capsys, *s, "store", "items", "")
    assert code == 0 and "users.alice" in out and '{"text": "tea", "n": 1}' in out
    code, out, _ = _run(capsys, *s, "store", "get", "users.alice", "m1")
    assert (code, json.loads(out)) == (0, {"text": "tea", "n": 1})
    assert _run(capsys, *s, "store", "delete", "users.alice", "m1")[0] == 0
    code, _, err = _run(capsys, *s, "store", "get", "users.alice", "m1")
    assert code == 3 and "no item 'm1'" in err
    assert _run(capsys, *s, "store", "delete", "users.alice", "m1")[0] == 3
    code, out, _ = _run(capsys, *s, "store", "sweep")
    assert (code, out.strip()) == (0, "deleted 0 expired items")


def test_store_command_errors(store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    s = store_args
    assert _run(capsys, *s, "store", "put", "users.x", "ok", "--value", "{}")[0] == 0
    code, _, err = _run(capsys, *s, "store", "put", "users.x", "k", "--value", "[1]")
    assert code == 2 and "a store value is a dict" in err
    code, _, err = _run(capsys, *s, "store", "put", "users..x", "k", "--value", "{}")
    assert code == 2 and "cannot be empty strings" in err
    code, _, err = _run(capsys, *s, "store", "put", "users.x", "k", "--value", "{nope")
    assert code == 2 and "--value is not valid JSON" in err
    code, _, err = _run(capsys, *s, "store", "items", "users", "--filter", '{"n": {"$in": [1]}}')
    assert code == 2 and "unsupported operator '$in'" in err
    assert err.count("\n") == 1  # one line


def test_reading_a_missing_sqlite_file_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_package("hitl_async_sqlite", "drivers/sqlite")
    path = tmp_path / "absent.db"
    code, _, err = _run(capsys, "--store", f"sqlite:///{path}", "store", "items", "")
    assert code == 5 and "no SQLite store" in err and not path.exists()
