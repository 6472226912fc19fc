"""Hostile data: damaged or foreign checkpoint bytes in the store, crafted extension payloads,
size and nesting limits, and hostile values at the API (resume values, node outputs).

The engine runs on the in-memory saver and on the SQLite driver; the store is damaged behind the
engine's back (the saver's dicts, or the database file through `sqlite3`).
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import datetime as dt
import importlib
import importlib.abc
import json
import operator
import pickle
import socket
import sqlite3
import subprocess
import sys
import textwrap
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    CheckpointCorruptError,
    Command,
    InMemorySaver,
    SerializationError,
    StateGraph,
    connect,
    interrupt,
)
from hitl_async.serde import (
    EXT_REGISTERED,
    EXT_TUPLE,
    MSGPACK_MAX_NESTING,
    Serializer,
    seal,
    unseal,
)

pytestmark = pytest.mark.anyio

THREAD = "hostile-thread"
CONFIG = {"configurable": {"thread_id": THREAD}}
SENTINEL_MODULE = "hitl_hostile_sentinel_module"


# -- the graph --------------------------------------------------------------------------------


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    answer: Any


SOCKETS: list[socket.socket] = []


def _socket() -> socket.socket:
    SOCKETS.append(socket.socket())
    return SOCKETS[-1]


UNSTORABLE: dict[str, Callable[[], Any]] = {
    "a lambda": lambda: lambda: "not data",
    "a socket": _socket,
}


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while SOCKETS:
        SOCKETS.pop().close()


def approval_graph(saver: Any) -> Any:
    """START -> prepare -> ask (pauses; stores the answer) -> END.

    Answering "unstorable:<kind>" makes `ask` return a value that cannot be serialized.
    """

    def ask(state: S) -> dict[str, Any]:
        answer = interrupt({"question": "approve?"})
        if isinstance(answer, str) and answer.startswith("unstorable:"):
            answer = UNSTORABLE[answer.split(":", 1)[1]]()
        return {"answer": answer, "log": ["ask"]}

    builder = StateGraph(S)
    builder.add_node("prepare", lambda state: {"log": ["prepare"]})
    builder.add_node("ask", ask)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


# -- stores that can be damaged behind the engine's back --------------------------------------


class MemoryStore:
    """InMemorySaver, damaged through its dicts."""

    kind = "memory"

    def __init__(self) -> None:
        self.saver = InMemorySaver()

    def _ns(self) -> Any:
        return self.saver._threads[THREAD][""]

    def head(self) -> str:
        head: str = self._ns().head
        return head

    def damage(self, part: str, mutate: Callable[[bytes], bytes]) -> None:
        ns = self._ns()
        record = ns.checkpoints[ns.head]
        if part == "header":
            ns.checkpoints[ns.head] = dataclasses.replace(record, header=mutate(record.header))
        elif part.startswith("channel:"):
            key = (part[8:], record.channel_versions[part[8:]])
            ns.blobs[key] = mutate(ns.blobs[key])
        else:
            rows = ns.writes[ns.head]
            (key,) = [k for k, w in rows.items() if w.channel == part[6:]]
            rows[key] = dataclasses.replace(rows[key], data=mutate(rows[key].data))

    def snapshot(self) -> Any:
        ns = self._ns()
        return (
            ns.head,
            dict(ns.checkpoints),
            dict(ns.blobs),
            {k: dict(v) for k, v in ns.writes.items()},
        )


class SqliteStore:
    """The SQLite driver, damaged by writing the database file with `sqlite3`."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saver = connect(f"sqlite:///{path}")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None)

    def head(self) -> str:
        with self._db() as db:
            row = db.execute(
                "SELECT head_id FROM threads WHERE thread_id = ? AND checkpoint_ns = ''", (THREAD,)
            ).fetchone()
        head: str = row[0]
        return head

    def damage(self, part: str, mutate: Callable[[bytes], bytes]) -> None:
        head = self.head()
        where = "thread_id = ? AND checkpoint_ns = ''"
        with self._db() as db:
            if part == "header":
                sql = f"SELECT header, rowid FROM checkpoints WHERE {where} AND checkpoint_id = ?"
                data, rowid = db.execute(sql, (THREAD, head)).fetchone()
                db.execute(
                    "UPDATE checkpoints SET header = ? WHERE rowid = ?", (mutate(data), rowid)
                )
            elif part.startswith("channel:"):
                sql = (
                    f"SELECT channel_versions FROM checkpoints WHERE {where} AND checkpoint_id = ?"
                )
                version = json.loads(db.execute(sql, (THREAD, head)).fetchone()[0])[part[8:]]
                sql = f"SELECT data, rowid FROM blobs WHERE {where} AND channel = ? AND version = ?"
                data, rowid = db.execute(sql, (THREAD, part[8:], version)).fetchone()
                db.execute("UPDATE blobs SET data = ? WHERE rowid = ?", (mutate(data), rowid))
            else:
                sql = f"SELECT data, rowid FROM writes WHERE {where} AND checkpoint_id = ?"
                sql += " AND channel = ?"
                data, rowid = db.execute(sql, (THREAD, head, part[6:])).fetchone()
                db.execute("UPDATE writes SET data = ? WHERE rowid = ?", (mutate(data), rowid))

    def snapshot(self) -> Any:
        with self._db() as db:
            return tuple(
                db.execute(
                    f"SELECT * FROM {table} WHERE thread_id = ? ORDER BY 1, 2, 3, 4", (THREAD,)
                ).fetchall()
                for table in ("threads", "checkpoints", "blobs", "writes")
            )


Store = MemoryStore | SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sqlite_store = SqliteStore(tmp_path / "hostile.db")
    await sqlite_store.saver.setup()
    try:
        yield sqlite_store
    finally:
        await sqlite_store.saver.aclose()


async def paused(store: Store) -> Any:
    """A graph on `store` whose thread is paused at `ask`."""
    graph = approval_graph(store.saver)
    out = await graph.ainvoke({"log": []}, CONFIG)
    assert "__interrupt__" in out
    return graph


async def same_thread(graph: Any, store: Store, before: Any, snapshot: Any) -> None:
    """The thread reads exactly as `before`, and the store holds exactly `snapshot`."""
    after = await graph.aget_state(CONFIG)
    assert (after.values, after.next, after.config, after.tasks) == (
        before.values,
        before.next,
        before.config,
        before.tasks,
    )
    assert store.snapshot() == snapshot


# -- damaged bytes in the store ---------------------------------------------------------------


def flip_first_bit(data: bytes) -> bytes:
    # The low bit of the first byte: the checksum frame's marker (flips anywhere else are
    # caught by the checksum; see tests/serde/test_integrity.py).
    return bytes([data[0] ^ 0x01]) + data[1:]


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda data: data[: len(data) // 2],
    "bit-flipped": flip_first_bit,
    "pickle": lambda data: pickle.dumps({"messages": ["hi"]}),
    "json": lambda data: json.dumps({"log": ["prepare"]}).encode(),
    # LangGraph's msgpack format: ext 2 = "call module.name(**kwargs)"; here ext 2 is a set.
    "langgraph": lambda data: msgpack.packb(
        msgpack.ExtType(2, msgpack.packb([SENTINEL_MODULE, "Evil", {"cmd": "rm -rf /"}]))
    ),
    "empty": lambda data: b"",
}

PARTS = {
    "header": "header",
    "channel:log": "channel 'log'",
    "write:__interrupt__": "write of task ",
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("part", list(PARTS))
async def test_damaged_checkpoint_is_refused_naming_thread_and_checkpoint(
    store: Store, part: str, damage: str
) -> None:
    graph = await paused(store)
    head = store.head()
    store.damage(part, DAMAGE[damage])
    snapshot = store.snapshot()
    for _ in range(2):  # a failed attempt writes nothing, so the next one fails the same way
        with pytest.raises(CheckpointCorruptError) as info:
            await graph.aget_state(CONFIG)
        error = info.value
        assert (error.thread_id, error.checkpoint_id) == (THREAD, head)
        assert error.where.startswith(PARTS[part])
        assert f"thread {THREAD!r}: checkpoint {head!r}" in str(error)
        assert "damaged, or were not written by this engine/serializer" in str(error)
        with pytest.raises(CheckpointCorruptError, match=f"checkpoint {head!r}"):
            await graph.ainvoke(Command(resume="yes"), CONFIG)
        with pytest.raises(CheckpointCorruptError):
            await graph.ainvoke(None, CONFIG)
        assert store.snapshot() == snapshot
    assert SENTINEL_MODULE not in sys.modules


async def test_future_header_format_is_refused(store: Store) -> None:
    graph = await paused(store)
    store.damage("header", lambda data: Serializer().dumps([2, 0, []]))
    with pytest.raises(CheckpointCorruptError, match="header format 2; this hitl-async reads"):
        await graph.aget_state(CONFIG)


# -- crafted extension payloads ----------------------------------------------------------------


def crafted(code: int, payload: Any) -> bytes:
    """One extension value with a valid checksum: whoever can write the store can compute
    checksums, so the allow-list and the limits must hold on their own."""
    return seal(msgpack.packb(msgpack.ExtType(code, msgpack.packb(payload, use_bin_type=True))))


class ImportRecorder(importlib.abc.MetaPathFinder):
    """Records every module lookup that reaches the import system's finders."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        self.names.append(fullname)
        return None


@contextlib.contextmanager
def watching_imports() -> Iterator[list[str]]:
    """Every import attempted inside the block, even of modules already loaded."""
    calls: list[str] = []
    real_import, real_import_module = builtins.__import__, importlib.import_module

    def spy_import(name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return real_import(name, *args, **kwargs)

    def spy_import_module(name: str, package: str | None = None) -> Any:
        calls.append(name)
        return real_import_module(name, package)

    recorder = ImportRecorder()
    builtins.__import__, importlib.import_module = spy_import, spy_import_module  # type: ignore[assignment]
    sys.meta_path.insert(0, recorder)
    try:
        yield calls
    finally:
        builtins.__import__, importlib.import_module = real_import, real_import_module
        sys.meta_path.remove(recorder)
        calls.extend(recorder.names)


CALLABLE_NAMES = [
    "os:system",
    "os.system",
    "subprocess.Popen",
    "subprocess:Popen",
    "builtins.eval",
    f"{SENTINEL_MODULE}.Evil",
    f"{SENTINEL_MODULE}:Evil",
    "tests.reliability.test_hostile_data.MemoryStore",  # a real class, never registered
]


@pytest.mark.parametrize("name", CALLABLE_NAMES)
def test_ext_payload_naming_a_callable_is_refused_without_importing(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[Any] = []
    monkeypatch.setattr("os.system", lambda *a: called.append(a))
    monkeypatch.setattr("subprocess.Popen", lambda *a, **k: called.append(a))
    ser = Serializer()
    for payload in ([name, {"args": ["echo pwned"]}], [name, ["echo pwned"]], [name, "echo"]):
        data = crafted(EXT_REGISTERED, payload)
        with watching_imports() as imports:
            try:
                ser.loads(data)
            except SerializationError as exc:
                error: Exception | None = exc
            else:
                error = None
        assert imports == []
        assert error is not None and "no class is registered under that name" in str(error)
    assert called == []
    assert SENTINEL_MODULE not in sys.modules


async def test_stored_ext_payload_naming_a_callable_is_refused(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[Any] = []
    monkeypatch.setattr("os.system", lambda *a: called.append(a))
    graph = await paused(store)
    for name in ("os:system", f"{SENTINEL_MODULE}.Evil"):
        store.damage("channel:log", lambda data, name=name: crafted(EXT_REGISTERED, [name, ["x"]]))
        with pytest.raises(CheckpointCorruptError, match="decoding never imports modules"):
            await graph.aget_state(CONFIG)
    assert called == []
    assert SENTINEL_MODULE not in sys.modules


# -- size and nesting limits --------------------------------------------------------------------


def declared(header: bytes, size: int, tail: bytes = b"\x00" * 16) -> bytes:
    return seal(header + size.to_bytes(4, "big") + tail)


HUGE = 300_000_000
DECLARED_HUGE = {
    "bin32": declared(b"\xc6", HUGE),
    "str32": declared(b"\xdb", HUGE),
    "array32": declared(b"\xdd", HUGE),
    "map32": declared(b"\xdf", HUGE),
    "ext32": declared(b"\xc9", HUGE, b"\x01" + b"\x00" * 16),
    "array32 in a tuple": seal(
        msgpack.packb(msgpack.ExtType(EXT_TUPLE, unseal(declared(b"\xdd", HUGE))))
    ),
}


@pytest.mark.parametrize("data", list(DECLARED_HUGE.values()), ids=list(DECLARED_HUGE))
def test_declared_300mb_value_is_refused_before_allocating(data: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(SerializationError, match=r"exceeds max_\w+_len|incomplete input"):
            Serializer().loads(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_input_longer_than_max_bytes_is_refused_before_decoding() -> None:
    ser = Serializer(max_bytes=1000)
    data = Serializer().dumps("x" * 2000)
    with pytest.raises(
        SerializationError, match=r"more than max_bytes=1000.*Serializer\(max_bytes"
    ):
        ser.loads(data)
    with pytest.raises(SerializationError, match=r"in channel 'doc'.*more than max_bytes=1000"):
        ser.dumps("x" * 2000, channel="doc")
    assert ser.loads(ser.dumps("x" * 900)) == "x" * 900
    with pytest.raises(ValueError, match="max_bytes must be a positive int"):
        Serializer(max_bytes=0)


def nested_list(depth: int, leaf: Any = 0) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def nested_tuple(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = (value,)
    return value


def test_10000_deep_list_is_refused_both_ways() -> None:
    ser = Serializer()
    with pytest.raises(
        SerializationError, match="nests too deeply: lists and dicts more than 1024"
    ):
        ser.dumps(nested_list(10_000), channel="c")
    with pytest.raises(
        SerializationError, match="nests too deeply: lists and dicts more than 1024"
    ):
        ser.loads(seal(b"\x91" * 10_000 + b"\x00"))


def test_msgpack_depth_limit_is_symmetric() -> None:
    """msgpack's packer writes one more level (an empty innermost list or dict) than its parser
    reads; everything dumps writes must load back."""
    ser = Serializer()
    for empty in ([], {}):
        deepest = nested_list(MSGPACK_MAX_NESTING, empty)
        data = ser.dumps(deepest)
        assert ser.dumps(ser.loads(data)) == data
    with pytest.raises(SerializationError, match="nests too deeply"):
        ser.dumps(nested_list(MSGPACK_MAX_NESTING + 1, []))


def test_max_depth_bounds_nested_extension_values() -> None:
    ser = Serializer()
    deepest = ser.dumps(nested_tuple(512))  # encoded and decoded without recursion
    assert ser.dumps(ser.loads(deepest)) == deepest
    with pytest.raises(SerializationError, match=r"more than max_depth=512.*Serializer\(max_depth"):
        ser.dumps(nested_tuple(513), channel="c")
    too_deep = Serializer(max_depth=513).dumps(nested_tuple(513))
    with pytest.raises(SerializationError, match=r"more than max_depth=512.*Serializer\(max_depth"):
        ser.loads(too_deep)
    assert Serializer(max_depth=513).loads(too_deep) == nested_tuple(513)
    cycle: list[Any] = []
    cycle.append((cycle,))
    with pytest.raises(SerializationError, match="reference cycle"):
        ser.dumps(cycle)


def test_deep_and_big_is_refused_both_ways() -> None:
    """Each nested extension value holds a copy of everything inside it, so deep nesting of a big
    value costs depth x size: the deep path stops at 8 x max_bytes of nested payloads."""
    small = Serializer(max_bytes=10_000)
    value: Any = "x" * 5000
    for _ in range(6):
        value = (value,)
    assert small.loads(small.dumps(value)) == value
    for _ in range(14):
        value = (value,)
    with pytest.raises(SerializationError, match=r"more than 80000 bytes in all \(8 x max_bytes"):
        small.dumps(value)
    with pytest.raises(SerializationError, match=r"more than 80000 bytes in all.*max_bytes=\.\.\."):
        small.loads(Serializer().dumps(value))


@dataclasses.dataclass
class Node:
    """A registered tree: each node is an extension value, so deep trees take the deep path."""

    label: str
    children: list[Node]
    data: Any = None


LEAF = {
    "when": dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    "day": dt.date(2024, 1, 2),
    "at": dt.time(1, 2),
    "span": dt.timedelta(days=2),
    "id": uuid.UUID(int=5),
    "amount": Decimal("1.50"),
    "big": 2**80,
    "raw": bytearray(b"xy"),
    "sets": ({1, 2}, frozenset({(3, 4)})),
    (1, (2, 3)): "tuple key",
}


@pytest.mark.parametrize("depth", [2, 40, 150])  # fast path, recursive deep path, loop
def test_every_path_round_trips_every_type(depth: int) -> None:
    ser = Serializer()
    ser.register(Node)
    tree = Node("root", [Node("sibling", [], LEAF)])
    node = tree
    for n in range(depth):
        child = Node(f"n{n}", [], ((LEAF,),) if n == depth - 1 else None)
        node.children.append(child)
        node = child
    data = ser.dumps(tree)
    back = ser.loads(data)
    assert back == tree  # (the bytearray comes back as bytes, which compares equal)
    assert ser.dumps(back) == data
    payload = unseal(data)
    assert ser._loop_dumps(tree) == ser._deep_dumps(tree) == payload
    assert ser._loop_loads(payload) == ser._deep_loads(payload) == back


# These crashed the interpreter (SIGSEGV) before the limits: msgpack.unpackb puts ~40 KiB on the
# C stack per nested extension payload, and its packer recurses in C for every list level.
# Each runs in a child process so a regression fails the test instead of killing the run.
CRASHERS = {
    "decode 10000 nested tuples": """
        data = msgpack.packb([])
        for _ in range(10_000):
            data = msgpack.packb(msgpack.ExtType(1, b"\\x91" + data))
        ser.loads(seal(data))
    """,
    "encode 200 tuples x 1000 lists": """
        value = 0
        for _ in range(200):
            for _ in range(1000):
                value = [value]
            value = (value,)
        ser.dumps(value)
    """,
    "decode 200 tuples x 1000 lists": """
        data = b"\\x00"
        for _ in range(200):
            data = msgpack.packb(msgpack.ExtType(1, b"\\x91" + b"\\x91" * 1000 + data))
        ser.loads(seal(data))
    """,
}


@pytest.mark.parametrize("code", list(CRASHERS.values()), ids=list(CRASHERS))
def test_nesting_bombs_are_refused_without_crashing(code: str) -> None:
    script = "import msgpack\nfrom hitl_async.serde import Serializer, seal\nser = Serializer()\n"
    script += "try:\n" + textwrap.indent(textwrap.dedent(code), "    ")
    script += "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("SerializationError")
    assert "nests too deeply" in done.stdout


BLOB_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.uuids()
    | st.decimals(allow_nan=False),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.frozensets(st.integers(), max_size=3)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@given(value=BLOB_VALUES)
@settings(max_examples=200, derandomize=True, database=None, deadline=None)
def test_deep_paths_match_the_fast_path(value: Any) -> None:
    """Both deep paths write the same bytes and read the same values as the fast path (which
    only handles values whose extension types nest less than 4 deep)."""
    ser = Serializer()
    data = ser.dumps(value)
    payload = unseal(data)
    assert ser._deep_dumps(value) == ser._loop_dumps(value) == payload
    assert ser._deep_loads(payload) == ser._loop_loads(payload) == ser.loads(data) == value


# Every mutation of a valid blob decodes to something or raises SerializationError: never another
# exception, never a crash, never an import.
@given(value=BLOB_VALUES, data=st.data())
@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_any_damage_to_a_blob_is_a_serialization_error(value: Any, data: st.DataObject) -> None:
    ser = Serializer()
    blob = bytearray(ser.dumps(value))
    action = data.draw(st.sampled_from(["truncate", "flip", "overwrite", "insert"]))
    at = data.draw(st.integers(0, max(len(blob) - 1, 0)))
    if action == "truncate":
        del blob[at:]
    elif action == "flip":
        blob[at] ^= 1 << data.draw(st.integers(0, 7))
    elif action == "overwrite":
        blob[at] = data.draw(st.integers(0, 255))
    else:
        blob[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    with contextlib.suppress(SerializationError):
        ser.loads(bytes(blob))
    assert SENTINEL_MODULE not in sys.modules


async def test_stored_nesting_bomb_is_a_corrupt_checkpoint(store: Store) -> None:
    graph = await paused(store)
    store.damage("channel:log", lambda data: seal(b"\x91" * 10_000 + b"\x00"))
    with pytest.raises(CheckpointCorruptError, match="lists and dicts more than 1024 levels"):
        await graph.aget_state(CONFIG)
    store.damage("channel:log", lambda data: DECLARED_HUGE["array32"])
    with pytest.raises(CheckpointCorruptError, match="exceeds max_array_len"):
        await graph.aget_state(CONFIG)


async def test_stored_value_over_max_bytes_is_refused(store: Store) -> None:
    graph = await paused(store)
    store.damage("channel:log", lambda data: Serializer().dumps(["x" * 5000]))
    graph.serde = Serializer(max_bytes=4096)
    with pytest.raises(CheckpointCorruptError, match="more than max_bytes=4096"):
        await graph.aget_state(CONFIG)


# -- hostile values at the API ------------------------------------------------------------------


async def test_5mb_resume_value_works(store: Store) -> None:
    graph = await paused(store)
    big = "x" * 5_000_000
    out = await graph.ainvoke(Command(resume=big), CONFIG)
    assert out["answer"] == big
    state = await graph.aget_state(CONFIG)
    assert state.values["answer"] == big and state.next == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (nested_list(10_000), "nests too deeply: lists and dicts more than 1024"),
        (nested_tuple(10_000), "nests too deeply: more than max_depth=512"),
        ({"doc": (lambda: 0)}, "type 'builtins.function'"),
    ],
    ids=["10000-deep list", "10000-deep tuple", "lambda"],
)
async def test_hostile_resume_value_is_refused_and_thread_unchanged(
    store: Store, value: Any, message: str
) -> None:
    graph = await paused(store)
    before, snapshot = await graph.aget_state(CONFIG), store.snapshot()
    with pytest.raises(SerializationError, match=message):
        await graph.ainvoke(Command(resume=value), CONFIG)
    await same_thread(graph, store, before, snapshot)
    out = await graph.ainvoke(Command(resume="yes"), CONFIG)
    assert out["answer"] == "yes" and out["log"] == ["prepare", "ask"]


def test_resume_nesting_bomb_does_not_crash_the_server() -> None:
    """A resume value that crashed the process before (a C stack overflow in msgpack's packer)."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_hostile_data import CONFIG, approval_graph
        from hitl_async import Command, InMemorySaver

        async def main():
            graph = approval_graph(InMemorySaver())
            await graph.ainvoke({{"log": []}}, CONFIG)
            value = 0
            for _ in range(200):
                for _ in range(1000):
                    value = [value]
                value = (value,)
            try:
                await graph.ainvoke(Command(resume=value), CONFIG)
            except Exception as exc:
                print(type(exc).__name__, exc)
            out = await graph.ainvoke(Command(resume="yes"), CONFIG)
            print("answer", out["answer"])

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    first, second = done.stdout.splitlines()
    assert first.startswith("SerializationError") and "nests too deeply" in first
    assert second == "answer yes"


@pytest.mark.parametrize("kind", list(UNSTORABLE))
async def test_unstorable_node_output_names_the_node_and_keeps_the_checkpoint(
    store: Store, kind: str
) -> None:
    graph = await paused(store)
    before = await graph.aget_state(CONFIG)
    head = store.head()
    with pytest.raises(SerializationError) as info:
        await graph.ainvoke(Command(resume=f"unstorable:{kind}"), CONFIG)
    message = str(info.value)
    assert f"thread {THREAD!r}: node 'ask' wrote state key 'answer'" in message
    assert "the step was not saved" in message
    after = await graph.aget_state(CONFIG)
    assert (after.values, after.next, after.config) == (before.values, before.next, before.config)
    assert store.head() == head


async def test_unstorable_node_output_leaves_the_thread_unchanged(store: Store) -> None:
    graph = await paused(store)
    before, snapshot = await graph.aget_state(CONFIG), store.snapshot()
    with pytest.raises(SerializationError):
        await graph.ainvoke(Command(resume="unstorable:a lambda"), CONFIG)
    await same_thread(graph, store, before, snapshot)


async def test_unstorable_node_output_leaves_the_thread_resumable(store: Store) -> None:
    graph = await paused(store)
    with pytest.raises(SerializationError):
        await graph.ainvoke(Command(resume="unstorable:a lambda"), CONFIG)
    out = await graph.ainvoke(Command(resume="yes"), CONFIG)
    assert out["answer"] == "yes"
