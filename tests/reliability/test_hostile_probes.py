"""An operator's and an attacker's probes, on every driver: API misuse (wrong config shapes,
unknown nodes, checkpoints of another thread, unstorable values), stored data replaced behind
the engine's back (damaged, foreign, crafted with a valid checksum). The HTTP server's probes
are in `test_hostile_probes_http.py`.

Each probe asserts the promise it tests: bad input is an exception class exported by
`hitl_async` naming what is wrong and changes nothing; damaged stored data is a
`CheckpointCorruptError` naming the thread and checkpoint, never another value, and loading it
never imports or calls anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import operator
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import msgpack
import pydantic
import pytest
from typing_extensions import TypedDict

import hitl_async
from hitl_async import (
    END,
    START,
    CheckpointCorruptError,
    Command,
    InMemorySaver,
    InvalidConfigError,
    InvalidThreadIdError,
    InvalidUpdateError,
    SerializationError,
    StateGraph,
    UnknownInterruptError,
    interrupt,
    register_type,
)
from hitl_async.serde import EXT_REGISTERED, Serializer, seal

pytestmark = pytest.mark.anyio

THREAD = "probed-thread"
OTHER = "other-thread"
CONFIG: dict[str, Any] = {"configurable": {"thread_id": THREAD}}
CANARY = "hitl_probe_canary"


class Model(pydantic.BaseModel):
    name: str
    size: int


register_type(Model)


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    model: Model
    answer: Any


def approval(saver: Any) -> Any:
    """START -> prepare (writes a registered pydantic value) -> ask (pauses) -> END."""

    def ask(state: S) -> dict[str, Any]:
        return {"answer": interrupt({"question": "approve?"}), "log": ["ask"]}

    builder = StateGraph(S)
    builder.add_node("prepare", lambda s: {"log": ["prepare"], "model": Model(name="m", size=2)})
    builder.add_node("ask", ask)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


async def paused(saver: Any) -> Any:
    graph = approval(saver)
    assert "__interrupt__" in await graph.ainvoke({"log": []}, CONFIG)
    assert "__interrupt__" in await graph.ainvoke(
        {"log": ["b"]}, {"configurable": {"thread_id": OTHER}}
    )
    return graph


async def seen(graph: Any) -> Any:
    """What a user can read of the thread: its state and its whole history."""
    state = await graph.aget_state(CONFIG)
    history = [
        (s.config, s.values, s.next, s.metadata) async for s in graph.aget_state_history(CONFIG)
    ]
    tasks = [(t.id, t.name, t.interrupts) for t in state.tasks]
    return state.values, state.next, state.config, tasks, history


# -- API misuse -------------------------------------------------------------------------------


def _deep(levels: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(levels):
        node.append([])
        node = node[0]
    return root


def _generator() -> Iterator[int]:
    yield 1


def at(checkpoint_id: Any = None, **more: Any) -> dict[str, Any]:
    conf = {"thread_id": THREAD, "checkpoint_id": checkpoint_id, **more}
    return {"configurable": conf}


async def drain(stream: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in stream]


MISSING = "1ef00000-0000-6000-8000-000000000000"

# name -> (call on (graph, other thread's head id), exception class, text the message holds)
MISUSE: dict[str, tuple[Callable[[Any, str], Awaitable[Any]], type[Exception], str]] = {
    "configurable is a list": (
        lambda g, o: g.ainvoke({"log": []}, {"configurable": [THREAD]}),
        InvalidConfigError,
        "config['configurable'] must be a dict",
    ),
    "checkpoint_id of another thread": (
        lambda g, o: g.aget_state(at(o)),
        InvalidConfigError,
        f"thread {THREAD!r} has no checkpoint",
    ),
    "continue from a checkpoint of another thread": (
        lambda g, o: g.ainvoke(None, at(o)),
        InvalidConfigError,
        f"thread {THREAD!r} has no checkpoint",
    ),
    "update a checkpoint that does not exist": (
        lambda g, o: g.aupdate_state(at(MISSING), {"log": ["x"]}),
        InvalidConfigError,
        MISSING,
    ),
    "checkpoint_id an int": (
        lambda g, o: g.aget_state(at(5)),
        InvalidThreadIdError,
        "checkpoint_id 5",
    ),
    "checkpoint_id with NUL": (
        lambda g, o: g.ainvoke(None, at("a\x00b")),
        InvalidThreadIdError,
        "NUL",
    ),
    "checkpoint_id of 5000 bytes": (
        lambda g, o: g.aget_state(at("x" * 5000)),
        InvalidThreadIdError,
        "over the limit of 1024",
    ),
    "checkpoint_ns an int": (
        lambda g, o: g.aget_state({"configurable": {"thread_id": THREAD, "checkpoint_ns": 5}}),
        InvalidThreadIdError,
        "checkpoint_ns 5",
    ),
    "thread id with NUL": (
        lambda g, o: g.ainvoke({"log": []}, {"configurable": {"thread_id": "a\x00"}}),
        InvalidThreadIdError,
        "NUL",
    ),
    "thread id a float": (
        lambda g, o: g.aget_state({"configurable": {"thread_id": 1.5}}),
        InvalidThreadIdError,
        "it is a float",
    ),
    "resume by an unknown id": (
        lambda g, o: g.ainvoke(Command(resume={"0" * 32: "yes"}), CONFIG),
        UnknownInterruptError,
        "0" * 32,
    ),
    "resume and goto an unknown node": (
        lambda g, o: g.ainvoke(Command(resume="yes", goto="nowhere"), CONFIG),
        InvalidUpdateError,
        "'nowhere'",
    ),
    "goto an int": (
        lambda g, o: g.ainvoke(Command(goto=5), CONFIG),
        InvalidUpdateError,
        f"thread {THREAD!r}: Command(goto=5): expected a node name, a Send, or a list of them",
    ),
    "goto a Send to an unknown node": (
        lambda g, o: g.ainvoke(Command(goto=hitl_async.Send("nowhere", {})), CONFIG),
        InvalidUpdateError,
        "'nowhere'",
    ),
    "update_state as an unknown node": (
        lambda g, o: g.aupdate_state(CONFIG, {"log": ["x"]}, as_node="nowhere"),
        InvalidUpdateError,
        "'nowhere'",
    ),
    "new input an int": (
        lambda g, o: g.ainvoke(5, CONFIG),
        InvalidUpdateError,
        f"thread {THREAD!r}: input returned int 5",
    ),
    "new input a list": (
        lambda g, o: g.ainvoke([1, 2], CONFIG),
        InvalidUpdateError,
        "expected a dict of state updates",
    ),
    "update_state with a lambda": (
        lambda g, o: g.aupdate_state(CONFIG, {"answer": lambda: 1}),
        SerializationError,
        "'builtins.function' in channel 'answer'",
    ),
    "update_state with a generator": (
        lambda g, o: g.aupdate_state(CONFIG, {"answer": _generator()}),
        SerializationError,
        "'builtins.generator'",
    ),
    "update_state with a list 10000 deep": (
        lambda g, o: g.aupdate_state(CONFIG, {"answer": _deep(10_000)}),
        SerializationError,
        "nests too deeply",
    ),
    "resume with a lambda": (
        lambda g, o: g.ainvoke(Command(resume=lambda: 1), CONFIG),
        SerializationError,
        "node 'ask' wrote state key 'answer'",
    ),
    "recursion_limit 0": (
        lambda g, o: g.ainvoke(Command(resume="yes"), {**CONFIG, "recursion_limit": 0}),
        InvalidConfigError,
        "recursion_limit must be an int >= 1",
    ),
    "recursion_limit a str": (
        lambda g, o: g.ainvoke(Command(resume="yes"), {**CONFIG, "recursion_limit": "9"}),
        InvalidConfigError,
        "recursion_limit must be an int >= 1",
    ),
    "stream_mode unknown": (
        lambda g, o: drain(g.astream(Command(resume="yes"), CONFIG, stream_mode="everything")),
        InvalidConfigError,
        "unknown stream_mode 'everything'",
    ),
    "stream_mode an int": (
        lambda g, o: drain(g.astream(Command(resume="yes"), CONFIG, stream_mode=5)),
        InvalidConfigError,
        "stream_mode must be a mode name or a list of them",
    ),
    "interrupt_before an unknown node": (
        lambda g, o: g.ainvoke(Command(resume="yes"), CONFIG, interrupt_before=["nowhere"]),
        InvalidConfigError,
        f"thread {THREAD!r}: interrupt_before: unknown node 'nowhere'; nodes are ['ask', 'prepare",
    ),
    "interrupt_after an unknown node": (
        lambda g, o: g.ainvoke(Command(resume="yes"), CONFIG, interrupt_after=["nowhere"]),
        InvalidConfigError,
        "interrupt_after: unknown node 'nowhere'",
    ),
    "interrupt_before a node name, not a list": (
        lambda g, o: g.ainvoke(Command(resume="yes"), CONFIG, interrupt_before="ask"),
        InvalidConfigError,
        "expected a list of node names or '*'",
    ),
    "history limit a str": (
        lambda g, o: drain(g.aget_state_history(CONFIG, limit="2")),
        InvalidConfigError,
        f"thread {THREAD!r}: get_state_history(limit='2')",
    ),
    "history filter an int": (
        lambda g, o: drain(g.aget_state_history(CONFIG, filter=5)),
        InvalidConfigError,
        "filter=5",
    ),
    "history before a str": (
        lambda g, o: drain(g.aget_state_history(CONFIG, before="x")),
        InvalidConfigError,
        "before=",
    ),
}


@pytest.mark.parametrize("probe", list(MISUSE))
async def test_misuse_is_a_library_error_and_changes_nothing(saver: Any, probe: str) -> None:
    """Each misuse raises its exported error, naming the bad value, and the thread (state and
    history) reads exactly as before; the thread can then be resumed as usual."""
    graph = await paused(saver)
    other = (await graph.aget_state({"configurable": {"thread_id": OTHER}})).config
    call, error, text = MISUSE[probe]
    before = await seen(graph)
    with pytest.raises(error) as info:
        await call(graph, other["configurable"]["checkpoint_id"])
    assert type(info.value).__name__ in hitl_async.__all__
    assert text in str(info.value)
    assert await seen(graph) == before
    done = await graph.ainvoke(Command(resume="yes"), CONFIG)
    assert done["answer"] == "yes" and done["log"] == ["prepare", "ask"]


# -- stored data replaced behind the engine's back --------------------------------------------


class Stored:
    """The framed values (checkpoint headers, channel blobs, pending writes) one thread has in
    a store, read and replaced with the store's own client."""

    def __init__(self, saver: Any, thread: str = THREAD) -> None:
        self.saver = saver
        self.thread = thread

    async def __aenter__(self) -> Stored:
        if hasattr(self.saver, "schema"):
            import asyncpg

            self.pg = await asyncpg.connect(self.saver.dsn)
        elif hasattr(self.saver, "prefix"):
            import redis.asyncio as aioredis

            self.redis = aioredis.Redis.from_url(self.saver.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if hasattr(self, "pg"):
            await self.pg.close()
        if hasattr(self, "redis"):
            await self.redis.aclose()

    async def values(self) -> list[tuple[Any, bytes]]:
        """(where, framed bytes) of every value of the thread."""
        saver = self.saver
        if isinstance(saver, InMemorySaver):
            ns = saver._threads[self.thread][""]
            out: list[tuple[Any, bytes]] = [
                (("cp", k), r.header) for k, r in ns.checkpoints.items()
            ]
            out += [(("blob", k), v) for k, v in ns.blobs.items()]
            out += [(("w", c, k), w.data) for c, rows in ns.writes.items() for k, w in rows.items()]
            return out
        if hasattr(saver, "schema"):
            return await self._pg_values()
        if hasattr(saver, "prefix"):
            return await self._redis_values()
        with sqlite3.connect(saver.path) as db:
            out = []
            for table, column in (("checkpoints", "header"), ("blobs", "data"), ("writes", "data")):
                sql = f"SELECT rowid, {column} FROM {table} WHERE thread_id = ?"
                out += [((table, column, r), bytes(v)) for r, v in db.execute(sql, (self.thread,))]
            return out

    async def put(self, where: Any, data: bytes) -> None:
        saver = self.saver
        if isinstance(saver, InMemorySaver):
            ns = saver._threads[self.thread][""]
            if where[0] == "cp":
                ns.checkpoints[where[1]] = dataclasses.replace(
                    ns.checkpoints[where[1]], header=data
                )
            elif where[0] == "blob":
                ns.blobs[where[1]] = data
            else:
                rows = ns.writes[where[1]]
                rows[where[2]] = dataclasses.replace(rows[where[2]], data=data)
        elif hasattr(saver, "schema"):
            table, column, key = where
            match = " AND ".join(f'"{c}"::text = ${i + 2}' for i, (c, _) in enumerate(key))
            sql = f'UPDATE "{saver.schema}"."{table}" SET "{column}" = $1 WHERE {match}'
            assert await self.pg.execute(sql, data, *[v for _, v in key]) == "UPDATE 1"
        elif hasattr(saver, "prefix"):
            await self._redis_put(where, data)
        else:
            table, column, rowid = where
            with sqlite3.connect(saver.path) as db:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (data, rowid))

    async def _pg_values(self) -> list[tuple[Any, bytes]]:
        schema = self.saver.schema
        out = []
        for table, column in (("checkpoints", "header"), ("blobs", "data"), ("writes", "data")):
            keys = await self.pg.fetch(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisprimary",
                f'"{schema}"."{table}"',
            )
            names = [k["attname"] for k in keys]
            cols = ", ".join(f'"{c}"::text AS "{c}"' for c in names)
            sql = f'SELECT {cols}, "{column}" AS v FROM "{schema}"."{table}" WHERE thread_id = $1'
            for row in await self.pg.fetch(sql, self.thread):
                out.append(((table, column, tuple((c, row[c]) for c in names)), bytes(row["v"])))
        return out

    def _redis_keys(self) -> tuple[str, str, str]:
        base = f"{self.saver.prefix}:{{t{self.thread.encode().hex()}}}"
        return f"{base}:cp:", f"{base}:blobs:", f"{base}:w:"

    async def _redis_values(self) -> list[tuple[Any, bytes]]:
        from hitl_async_redis._codec import decode_record, decode_write

        cp, blobs, writes = self._redis_keys()
        out: list[tuple[Any, bytes]] = []
        for field, value in (await self.redis.hgetall(cp)).items():
            record = decode_record(self.thread, "", field.decode(), value)
            out.append((("cp", field), record.header))
        out += [(("blob", f), v) for f, v in (await self.redis.hgetall(blobs)).items()]
        for field, value in (await self.redis.hgetall(writes)).items():
            out.append((("w", field), decode_write(value).data))
        return out

    async def _redis_put(self, where: Any, data: bytes) -> None:
        from hitl_async_redis._codec import decode_record, decode_write, encode_record, encode_write

        kind, field = where
        cp, blobs, writes = self._redis_keys()
        if kind == "cp":
            record = decode_record(
                self.thread, "", field.decode(), await self.redis.hget(cp, field)
            )
            await self.redis.hset(
                cp, field, encode_record(dataclasses.replace(record, header=data))
            )
        elif kind == "blob":
            await self.redis.hset(blobs, field, data)
        else:
            write = decode_write(await self.redis.hget(writes, field))
            await self.redis.hset(
                writes, field, encode_write(dataclasses.replace(write, data=data))
            )


def crafted(code: int, payload: Any) -> bytes:
    """An extension value with a valid checksum: whoever writes the store can compute one."""
    return seal(msgpack.packb(msgpack.ExtType(code, msgpack.packb(payload, use_bin_type=True))))


TAMPER: dict[str, Callable[[bytes], bytes]] = {
    "a flipped payload bit": lambda data: data[:-1] + bytes([data[-1] ^ 0x01]),
    "truncated": lambda data: data[: len(data) // 2],
    # protocol 2: GLOBAL hitl_probe_canary.record, call it with no arguments
    "a pickle calling the canary": lambda data: b"\x80\x02c" + CANARY.encode() + b"\nrecord\n)R.",
    "an extension naming the canary class": lambda data: crafted(
        EXT_REGISTERED, [f"{CANARY}.Evil", {"x": 1}]
    ),
    "an unregistered extension code": lambda data: crafted(99, [1, 2]),
    "a registered model missing its fields (valid checksum)": lambda data: crafted(
        EXT_REGISTERED, [hitl_async.serde.registry.qualname(Model), [{"name": "m"}, None, []]]
    ),
}

CANARY_SOURCE = """
from pathlib import Path
Path(__file__).with_name("imported").write_text("yes")
def record(*args, **kwargs):
    Path(__file__).with_name("called").write_text("yes")
class Evil:
    def __init__(self, *args, **kwargs):
        record()
"""


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An importable module that leaves a file behind when it is imported or called."""
    home = tmp_path / "canary"
    home.mkdir()
    (home / f"{CANARY}.py").write_text(CANARY_SOURCE)
    monkeypatch.syspath_prepend(str(home))
    yield home
    sys.modules.pop(CANARY, None)


@pytest.mark.parametrize("tamper", list(TAMPER))
async def test_every_stored_value_tampered_is_a_corrupt_checkpoint(
    saver: Any, tamper: str, canary: Path
) -> None:
    """Each header, blob and pending write of the thread, replaced in the store in turn: loading
    the state or the history raises CheckpointCorruptError naming the thread and one of its
    checkpoints, imports and calls nothing, and the thread reads as before once the value is
    put back."""
    graph = await paused(saver)
    before = await seen(graph)
    ids = {
        s.config["configurable"]["checkpoint_id"] async for s in graph.aget_state_history(CONFIG)
    }
    async with Stored(saver) as stored:
        values = await stored.values()
        assert len(values) >= 6  # headers, blobs of log and model, the interrupt write, ...
        for where, data in values:
            await stored.put(where, TAMPER[tamper](data))
            with pytest.raises(CheckpointCorruptError) as info:
                await seen(graph)
            assert info.value.thread_id == THREAD and info.value.checkpoint_id in ids, where
            assert f"thread {THREAD!r}: checkpoint" in str(info.value)
            await stored.put(where, data)
    assert not (canary / "imported").exists() and not (canary / "called").exists()
    assert CANARY not in sys.modules
    assert await seen(graph) == before


def _load(data: bytes) -> Any:
    try:
        return Serializer().loads(data)
    except SerializationError:
        return None


def _engine_record(value: Any) -> bool:
    """A checkpoint header ([format, step, tasks, ...]) or a task's interrupts (a list of
    Interrupt): values the engine writes in a shape of its own, checked on load."""
    if type(value) is not list or not value:
        return False
    if all(isinstance(i, hitl_async.Interrupt) for i in value):
        return True
    return len(value) >= 3 and type(value[0]) is int and type(value[1]) is int


async def test_a_header_or_interrupt_write_of_another_shape_is_a_corrupt_checkpoint(
    saver: Any,
) -> None:
    """A well-formed value (valid checksum) in place of a header or of a task's interrupts: the
    shape is checked on load, so it is refused there (it was an AttributeError later)."""
    graph = await paused(saver)
    before = await seen(graph)
    async with Stored(saver) as stored:
        records = [(w, d) for w, d in await stored.values() if _engine_record(_load(d))]
        assert len(records) >= 4  # three headers and the paused task's interrupts
        for where, data in records:
            for foreign in (5, "text", [1, 2, 3], {"a": 1}):
                await stored.put(where, Serializer().dumps(foreign))
                with pytest.raises(CheckpointCorruptError) as info:
                    await seen(graph)
                assert info.value.thread_id == THREAD
            await stored.put(where, data)
    assert await seen(graph) == before


async def test_a_value_swapped_in_from_another_thread_is_not_detected(saver: Any) -> None:
    """A known limit, stated so that it is not taken for a guarantee: the checksum covers a
    value's bytes, not where it is stored, so a valid blob copied over from another thread loads
    as that value. Only the store's access control keeps a writer from doing this."""
    graph = await paused(saver)
    before = (await graph.aget_state(CONFIG)).values
    async with Stored(saver, OTHER) as theirs, Stored(saver) as mine:
        (foreign,) = [d for _, d in await theirs.values() if _load(d) == ["b", "prepare"]]
        (where,) = [w for w, d in await mine.values() if _load(d) == ["prepare"]]
        await mine.put(where, foreign)
    after = (await graph.aget_state(CONFIG)).values
    assert before["log"] == ["prepare"] and after["log"] == ["b", "prepare"]


async def test_concurrent_resumes_of_one_interrupt_run_the_node_once(saver: Any) -> None:
    """Eight resumes of the same interrupt at once, each through its own graph object: one
    answers it; the others are refused (the thread is busy, or no longer paused) and the node
    after the interrupt ran once."""
    calls: list[str] = []

    def ask(state: S) -> dict[str, Any]:
        answer = interrupt("approve?")
        calls.append(answer)
        return {"answer": answer}

    def graph() -> Any:
        builder = StateGraph(S)
        builder.add_node("ask", ask)
        builder.add_edge(START, "ask")
        builder.add_edge("ask", END)
        return builder.compile(checkpointer=saver)

    await graph().ainvoke({"log": []}, CONFIG)

    async def resume(i: int) -> Any:
        try:
            return await graph().ainvoke(Command(resume=f"answer {i}"), CONFIG)
        except (hitl_async.ThreadBusyError, hitl_async.NoPendingInterruptError) as exc:
            return exc

    results = await asyncio.gather(*[resume(i) for i in range(8)])
    won = [r for r in results if isinstance(r, dict)]
    assert len(won) == 1 and len(calls) == 1 and won[0]["answer"] == calls[0]
    assert all(isinstance(r, hitl_async.HitlError) for r in results if r is not won[0])
    state = await graph().aget_state(CONFIG)
    assert state.next == () and state.values["answer"] == calls[0]
