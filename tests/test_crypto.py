"""hitl_async.crypto.EncryptedSerializer: AES-256-GCM around the checkpoint serializer.

Round trips, key rotation, unknown and swapped key ids, tampering, plaintext rows (refused, or
allowed while migrating), key validation, the optional dependency, and a paused graph whose
store only ever holds ciphertext.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
import subprocess
import sys
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    CheckpointCorruptError,
    Command,
    DecryptionError,
    InMemorySaver,
    SerializationError,
    StateGraph,
    interrupt,
    list_pending,
)
from hitl_async.crypto import MAGIC, EncryptedSerializer
from hitl_async.serde import Serializer

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
SECRET = "account 4242-SECRET"


@dataclasses.dataclass
class Transfer:
    amount: int
    to: str


def inner() -> Serializer:
    ser = Serializer()
    ser.register(Transfer)
    return ser


def encrypted(**keys: bytes) -> EncryptedSerializer:
    """An EncryptedSerializer whose active key is the last one given."""
    return EncryptedSerializer(keys, list(keys)[-1], inner=inner())


VALUE = {
    "note": SECRET,
    "transfer": Transfer(500, SECRET),
    "when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    "pair": (1, frozenset({2})),
}


def test_round_trip_and_format() -> None:
    ser = encrypted(k1=K1)
    data = ser.dumps(VALUE, channel="state")
    assert data.startswith(MAGIC + b"\x02k1")
    assert SECRET.encode() not in data
    assert ser.loads(data) == VALUE
    assert ser.dumps(VALUE) != data  # a fresh random nonce every time
    assert len(data) == len(ser.inner.dumps(VALUE)) + len(MAGIC) + 1 + 2 + 12 + 16


def test_rotation_keeps_old_rows_readable() -> None:
    old = encrypted(k1=K1).dumps(VALUE)
    rotated = encrypted(k1=K1, k2=K2)
    assert rotated.active == "k2"
    new = rotated.dumps(VALUE)
    assert new.startswith(MAGIC + b"\x02k2")
    assert rotated.loads(old) == rotated.loads(new) == VALUE
    retired = encrypted(k2=K2)  # k1 dropped: its rows can no longer be read
    assert retired.loads(new) == VALUE
    with pytest.raises(DecryptionError, match=r"key id 'k1', which is not among .*\('k2'\)"):
        retired.loads(old)


def test_unknown_key_id() -> None:
    data = encrypted(other=K1).dumps(1)
    with pytest.raises(DecryptionError, match="key id 'other', which is not among") as info:
        encrypted(k1=K1).loads(data)
    assert isinstance(info.value, SerializationError)


@pytest.mark.parametrize("where", ["key id", "nonce", "ciphertext", "tag"])
def test_tampered_byte_fails_authentication(where: str) -> None:
    ser = encrypted(k1=K1)
    data = bytearray(ser.dumps(VALUE))
    header = len(MAGIC) + 1 + 2
    at = {"key id": header - 1, "nonce": header + 3, "ciphertext": header + 20, "tag": -1}[where]
    data[at] ^= 0x01
    message = "not among" if where == "key id" else "failed authentication"
    with pytest.raises(DecryptionError, match=message):
        ser.loads(bytes(data))


def test_truncated_or_extended_row_fails() -> None:
    ser = encrypted(k1=K1)
    data = ser.dumps(VALUE)
    for broken in (data[:-1], data[: len(data) // 2], data[:8], data + b"\x00"):
        with pytest.raises(DecryptionError):
            ser.loads(broken)


def test_swapped_key_id_is_detected() -> None:
    # The key id is authenticated data: a row cannot be relabelled, even to an id whose key is
    # the same bytes.
    data = encrypted(k1=K1).dumps(VALUE)
    relabelled = data.replace(b"\x02k1", b"\x02k2", 1)
    for keys in ({"k1": K1, "k2": K2}, {"k1": K1, "k2": K1}):
        with pytest.raises(DecryptionError, match="failed authentication"):
            EncryptedSerializer(keys, "k1").loads(relabelled)


def test_plaintext_is_refused_unless_allowed() -> None:
    plain = Serializer().dumps({"note": SECRET})
    with pytest.raises(DecryptionError, match=r"is not encrypted.*allow_plaintext=True"):
        encrypted(k1=K1).loads(plain)
    migrating = EncryptedSerializer({"k1": K1}, "k1", inner=inner(), allow_plaintext=True)
    assert migrating.loads(plain) == {"note": SECRET}
    assert migrating.dumps(1).startswith(MAGIC)  # writes are always encrypted
    tampered = bytearray(migrating.dumps(VALUE))
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError):  # an encrypted row is still authenticated
        migrating.loads(bytes(tampered))


@pytest.mark.parametrize("key", [b"", b"x" * 16, b"x" * 31, b"x" * 33, "x" * 32, None])
def test_wrong_key_size_is_refused(key: Any) -> None:
    with pytest.raises(ValueError, match="must be 32 bytes"):
        EncryptedSerializer({"k1": key}, "k1")


def test_bad_key_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="active key id 'k2' is not in keys"):
        EncryptedSerializer({"k1": K1}, "k2")
    with pytest.raises(ValueError, match="non-empty mapping"):
        EncryptedSerializer({}, "k1")
    with pytest.raises(ValueError, match="non-empty str"):
        EncryptedSerializer({"": K1}, "")
    with pytest.raises(ValueError, match="longer than 255 bytes"):
        EncryptedSerializer({"k" * 256: K1}, "k" * 256)
    assert len(EncryptedSerializer.generate_key()) == 32


def test_inner_limits_apply() -> None:
    ser = EncryptedSerializer({"k1": K1}, "k1", inner=Serializer(max_bytes=1000))
    assert (ser.max_bytes, ser.max_depth) == (1000, 512)
    with pytest.raises(SerializationError, match="more than max_bytes=1000"):
        ser.dumps("x" * 2000)
    with pytest.raises(DecryptionError, match="not decrypted"):
        ser.loads(MAGIC + b"\x02k1" + bytes(5000))


def test_register_delegates_to_inner() -> None:
    @dataclasses.dataclass
    class Local:
        v: int

    ser = EncryptedSerializer({"k1": K1}, "k1", inner=Serializer())
    assert ser.register(Local) is Local
    assert ser.loads(ser.dumps(Local(3))) == Local(3)


def test_cryptography_is_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = "import sys, hitl_async, hitl_async.crypto; print('cryptography' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(ImportError, match=r"pip install 'hitl-async\[crypto\]'"):
        EncryptedSerializer({"k1": K1}, "k1")


@given(data=st.data())
@settings(max_examples=300, derandomize=True, database=None, deadline=None)
def test_any_change_to_a_row_is_refused(data: st.DataObject) -> None:
    ser = encrypted(k1=K1)
    row = bytearray(ser.dumps(VALUE))
    at = data.draw(st.integers(0, len(row) - 1))
    action = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
    if action == "flip":
        row[at] ^= 1 << data.draw(st.integers(0, 7))
    elif action == "truncate":
        del row[at:]
    elif action == "insert":
        row[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    else:
        del row[at]
    with pytest.raises(DecryptionError):
        ser.loads(bytes(row))


# -- through a graph ----------------------------------------------------------------------------
# The lead will add a `serializer=` parameter to compile(); until then the serializer is set on
# the compiled graph, which is what that parameter will do.


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    note: str
    answer: Any


def graph_with(saver: InMemorySaver, serde: Any) -> Any:
    def ask(state: S) -> dict[str, Any]:
        return {"answer": interrupt({"question": f"approve {state['note']}?"}), "log": ["ask"]}

    builder = StateGraph(S)
    builder.add_node("prepare", lambda state: {"log": ["prepare"]})
    builder.add_node("ask", ask)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "ask")
    builder.add_edge("ask", END)
    graph = builder.compile(checkpointer=saver)
    graph.serde = serde
    return graph


def stored_bytes(obj: Any, out: list[bytes] | None = None, seen: set[int] | None = None) -> Any:
    """Every bytes value reachable from a saver's attributes."""
    out = [] if out is None else out
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return out
    seen.add(id(obj))
    if isinstance(obj, bytes):
        out.append(obj)
    elif isinstance(obj, dict):
        for item in obj.values():
            stored_bytes(item, out, seen)
    elif isinstance(obj, (list, tuple, set)):
        for item in obj:
            stored_bytes(item, out, seen)
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            stored_bytes(getattr(obj, f.name), out, seen)
    elif hasattr(obj, "__dict__"):
        stored_bytes(vars(obj), out, seen)
    elif hasattr(obj, "__slots__"):
        for name in obj.__slots__:
            stored_bytes(getattr(obj, name, None), out, seen)
    return out


CONFIG = {"configurable": {"thread_id": "secret-thread"}}


@pytest.mark.anyio
async def test_graph_pauses_and_resumes_with_only_ciphertext_stored() -> None:
    saver = InMemorySaver()
    ser = encrypted(k1=K1)
    graph = graph_with(saver, ser)
    out = await graph.ainvoke({"note": SECRET, "log": []}, CONFIG)
    assert out["__interrupt__"][0].value == {"question": f"approve {SECRET}?"}
    rows = stored_bytes(saver)
    assert len(rows) >= 4  # header, blobs, the interrupt write, the inbox entry
    assert all(row.startswith(MAGIC) for row in rows)
    assert not any(SECRET.encode() in row for row in rows)
    state = await graph.aget_state(CONFIG)
    assert state.values["note"] == SECRET and state.next == ("ask",)
    (pending,) = await list_pending(saver, serde=ser)
    assert pending.value == {"question": f"approve {SECRET}?"}

    rotated = graph_with(saver, encrypted(k1=K1, k2=K2))  # a deploy that rotated to k2
    out = await rotated.ainvoke(Command(resume="approved"), CONFIG)
    assert out["answer"] == "approved" and out["log"] == ["prepare", "ask"]
    head = saver._threads["secret-thread"][""]
    assert head.checkpoints[head.head].header.startswith(MAGIC + b"\x02k2")


@pytest.mark.anyio
async def test_graph_refuses_tampered_and_plaintext_rows() -> None:
    saver = InMemorySaver()
    graph = graph_with(saver, encrypted(k1=K1))
    await graph.ainvoke({"note": SECRET, "log": []}, CONFIG)
    ns = saver._threads["secret-thread"][""]
    record = ns.checkpoints[ns.head]
    key = ("note", record.channel_versions["note"])
    good = ns.blobs[key]
    ns.blobs[key] = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(
        CheckpointCorruptError, match=r"channel 'note'.*failed authentication"
    ) as info:
        await graph.aget_state(CONFIG)
    assert isinstance(info.value.__cause__, DecryptionError)
    ns.blobs[key] = good

    plain = InMemorySaver()  # a store written before encryption was turned on
    await graph_with(plain, Serializer()).ainvoke({"note": SECRET, "log": []}, CONFIG)
    with pytest.raises(CheckpointCorruptError, match="is not encrypted"):
        await graph_with(plain, encrypted(k1=K1)).aget_state(CONFIG)
    migrating = EncryptedSerializer({"k1": K1}, "k1", allow_plaintext=True)
    out = await graph_with(plain, migrating).ainvoke(Command(resume="ok"), CONFIG)
    assert out["answer"] == "ok"
    ns = plain._threads["secret-thread"][""]
    assert ns.checkpoints[ns.head].header.startswith(MAGIC)  # new rows are encrypted


def test_compile_serializer_encrypts_subgraph_checkpoints_too() -> None:
    from typing_extensions import TypedDict

    from hitl_async import END, START, Command, InMemorySaver, StateGraph, interrupt
    from hitl_async.crypto import EncryptedSerializer

    class S(TypedDict, total=False):
        x: str

    sub = StateGraph(S)
    sub.add_node("ask", lambda s: {"x": interrupt("secret question")})
    sub.add_edge(START, "ask")
    sub.add_edge("ask", END)
    parent = StateGraph(S)
    parent.add_node("child", sub.compile())
    parent.add_edge(START, "child")
    saver = InMemorySaver()
    key = b"k" * 32
    graph = parent.compile(
        checkpointer=saver, serializer=EncryptedSerializer({"k1": key}, active="k1")
    )
    cfg = {"configurable": {"thread_id": "enc"}}
    graph.invoke({"x": "plain secret"}, cfg)
    stored = [
        blob
        for spaces in saver._threads.values()
        for ns in spaces.values()
        for blob in [
            *ns.blobs.values(),
            *(w.data for ws in ns.writes.values() for w in ws.values()),
        ]
    ]
    assert len({ns for spaces in saver._threads.values() for ns in spaces}) == 2
    assert stored and all(b.startswith(b"HAE1") for b in stored)
    assert not any(b"secret" in b for b in stored)
    assert graph.invoke(Command(resume="ok"), cfg) == {"x": "ok"}
