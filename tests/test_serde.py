"""Tests of the checkpoint serializer (`hitl_async.serde`): round trips, registry, safety."""

import collections
import contextlib
import dataclasses
import datetime as dt
import enum
import importlib.abc
import math
import random
import sys
import typing
import uuid
from decimal import Decimal
from typing import Annotated, Any, NamedTuple, Optional, TypedDict
from zoneinfo import ZoneInfo

import msgpack
import pydantic
import pytest

from hitl_async.errors import SerializationError
from hitl_async.serde import (
    Serializer,
    default_serializer,
    register_type,
    register_types_from_annotation,
    seal,
)
from hitl_async.types import Command, Interrupt, Send

EXT_REGISTERED = 11
EVIL = "hitl_evil_module_xyz"


# --- helpers ---------------------------------------------------------------------------------


def assert_same(a: Any, b: Any) -> None:
    """Deep equality that also requires identical types at every level (NaN equals NaN)."""
    assert type(a) is type(b), f"{type(a)} != {type(b)} for {a!r}"
    if isinstance(a, dict):
        assert len(a) == len(b)
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
            assert_same(ka, kb)
            assert_same(va, vb)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, (set, frozenset)):
        assert a == b
        for x in a:
            (y,) = (y for y in b if y == x)
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    elif isinstance(a, Decimal):
        assert str(a) == str(b)  # exact: digits, exponent, sign and NaN kind
    elif isinstance(a, (dt.datetime, dt.time)):
        assert a == b
        assert a.fold == b.fold
        assert_same(a.tzinfo, b.tzinfo)
    else:
        assert a == b


def roundtrip(value: Any, ser: Serializer | None = None) -> Any:
    ser = ser or Serializer()
    data = ser.dumps(value)
    assert isinstance(data, bytes)
    return ser.loads(data)


def crafted(code: int, payload: Any) -> bytes:
    """A stored value holding one extension value, with a valid checksum frame (an attacker who
    can write the store can compute checksums: the allow-list is what stops them)."""
    return seal(msgpack.packb(msgpack.ExtType(code, msgpack.packb(payload, use_bin_type=True))))


class ImportRecorder(importlib.abc.MetaPathFinder):
    """Records every module lookup, to prove decoding imports nothing."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        self.names.append(fullname)
        return None


@pytest.fixture
def imports() -> typing.Iterator[ImportRecorder]:
    recorder = ImportRecorder()
    sys.meta_path.insert(0, recorder)
    try:
        yield recorder
    finally:
        sys.meta_path.remove(recorder)


# --- user types ------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = 2


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    FAST = "fast"


class Perm(enum.Flag):
    R = 1
    W = 2
    X = 4


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class FrozenPoint:
    x: int
    y: tuple[int, ...] = ()


@dataclasses.dataclass(slots=True)
class SlotsPoint:
    x: int
    blob: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True)
class FrozenSlots:
    point: Point
    when: dt.datetime


@dataclasses.dataclass
class Computed:
    a: int
    total: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.total = self.a * 10


@dataclasses.dataclass
class Unregistered:
    x: int


class Plain:
    pass


class Pair(NamedTuple):
    left: int
    right: tuple[int, int]


if pydantic is not None:

    class Address(pydantic.BaseModel):
        city: str
        coords: tuple[float, float]

    class Person(pydantic.BaseModel):
        name: str
        addresses: list[Address]
        color: Color = Color.RED
        nickname: str | None = None

    class FrozenModel(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(frozen=True, extra="allow")
        key: str


# --- round trips -----------------------------------------------------------------------------

SIMPLE = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    2**64,
    -(2**63) - 1,
    10**100,
    -(10**100),
    1.5,
    float("inf"),
    float("nan"),
    "",
    "héllo ✓",
    b"",
    b"\x00\xff",
    [],
    {},
    (),
    (1,),
    set(),
    frozenset(),
    {1, "a", (2, 3)},
    frozenset({b"x", 1.5}),
    [1, [2, [3]]],
    {"a": {"b": {"c": None}}},
    {1: "int key", 2.5: "float key", None: "none key", b"k": "bytes key"},
    {(1, 2): "tuple key", ("a", (b"b",)): "nested tuple key", frozenset({1}): "fs key"},
    [{"t": (1, (2, 3), [4, (5,)])}],
    {(1, "a"), (2, "b", (3,))},
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    dt.date(2024, 2, 29),
    dt.date.min,
    dt.timedelta(days=-3, seconds=5, microseconds=7),
    dt.timedelta.max,
    dt.time(23, 59, 59, 999999),
]


def _stable_id(value: Any) -> str:
    """A test id that does not depend on set iteration order (hash seeds differ per process)."""
    if isinstance(value, set | frozenset):
        return f"{type(value).__name__}[{', '.join(sorted(map(repr, value)))}]"
    return repr(value)


@pytest.mark.parametrize("value", SIMPLE, ids=_stable_id)
def test_roundtrip_builtin_types(value: Any) -> None:
    assert_same(value, roundtrip(value))


def test_nesting_keeps_every_type() -> None:
    value = [
        {"t": (1, ("x", b"y"), {"inner": (None,)}), (1, (2, 3)): [frozenset({(4, 5)})]},
        {("a", 1), ("b", 2)},
        (Decimal("1.10"), uuid.UUID(int=7), dt.date(2000, 1, 1)),
    ]
    back = roundtrip(value)
    assert_same(value, back)
    assert type(back[0]["t"][1]) is tuple
    assert type(next(iter(back[0][(1, (2, 3))][0]))) is tuple


@pytest.mark.parametrize(
    "text",
    [
        "0.1",
        "1.10",
        "-0",
        "0E-30",
        "1E+100",
        "3.14159265358979323846264338327950288419716939937510",
        "NaN",
        "-NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
    ],
)
def test_decimal_is_exact(text: str) -> None:
    back = roundtrip(Decimal(text))
    assert type(back) is Decimal
    assert str(back) == str(Decimal(text))


def test_bytearray_comes_back_as_bytes() -> None:
    value = {"top": bytearray(b"a"), "deep": [[{"x": bytearray(b"b")}]], "t": (bytearray(b"c"),)}
    back = roundtrip(value)
    assert back == {"top": b"a", "deep": [[{"x": b"b"}]], "t": (b"c",)}
    assert type(back["top"]) is bytes and type(back["t"][0]) is bytes
    assert type(roundtrip(bytearray(b"top"))) is bytes


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 5, 17, 12, 30, 45, 123456),
        dt.datetime(2024, 5, 17, 12, 30, tzinfo=dt.UTC),
        dt.datetime(2024, 5, 17, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        dt.datetime(2024, 5, 17, tzinfo=dt.timezone(dt.timedelta(hours=-3), "BRT")),
        dt.datetime(2024, 5, 17, tzinfo=dt.timezone(dt.timedelta(seconds=1, microseconds=5))),
        dt.datetime(2024, 7, 1, 9, tzinfo=ZoneInfo("Europe/Paris")),
        dt.datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=1),
        dt.datetime.max,
        dt.time(8, 15, tzinfo=dt.UTC),
        dt.time(8, 15, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-11))),
        dt.time(8, 15, tzinfo=ZoneInfo("Asia/Tokyo")),
    ],
    ids=repr,
)
def test_datetimes_keep_their_zone(value: dt.datetime | dt.time) -> None:
    back = roundtrip(value)
    assert_same(value, back)
    if isinstance(value.tzinfo, ZoneInfo):
        assert back.tzinfo.key == value.tzinfo.key
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        assert back.utcoffset() == value.utcoffset()


def test_utc_is_the_utc_singleton() -> None:
    assert roundtrip(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)).tzinfo is dt.UTC


def test_enums() -> None:
    ser = Serializer()
    for cls in (Color, Level, Mode, Perm):
        ser.register(cls)
    value = [Color.RED, Color.GREEN, Level.HIGH, Mode.FAST, Perm.R, Perm.R | Perm.W, Perm(0)]
    back = roundtrip(value, ser)
    assert back == value
    assert all(a is b for a, b in zip(back, value, strict=True))


def test_dataclasses() -> None:
    ser = Serializer()
    for cls in (Point, FrozenPoint, SlotsPoint, FrozenSlots, Computed):
        ser.register(cls)
    when = dt.datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    value = {
        "plain": Point(1),
        "with_defaults": Point(2, 3, ["a"]),
        "frozen": FrozenPoint(1, (2, 3)),
        "slots": SlotsPoint(5),
        "nested": FrozenSlots(Point(1, 2, ["t"]), when),
        "init_false": Computed(4),
        "in_tuple": (Point(7),),
    }
    back = roundtrip(value, ser)
    assert back == value
    for key in value:
        assert type(back[key]) is type(value[key])
    assert type(back["frozen"].y) is tuple
    assert back["nested"].when.tzinfo.key == "Europe/Berlin"
    assert back["init_false"].total == 40


def test_dataclass_init_false_field_is_restored_not_recomputed() -> None:
    ser = Serializer()
    ser.register(Computed)
    obj = Computed(1)
    obj.total = 999  # state that __post_init__ would not reproduce
    assert roundtrip(obj, ser).total == 999


def test_namedtuple_must_be_registered() -> None:
    ser = Serializer()
    with pytest.raises(SerializationError, match=r"NamedTuple.*register_type\(Pair\)"):
        ser.dumps(Pair(1, (2, 3)))
    ser.register(Pair)
    back = roundtrip([Pair(1, (2, 3))], ser)
    assert type(back[0]) is Pair
    assert back[0] == Pair(1, (2, 3))
    assert type(back[0].right) is tuple


def test_mapping_and_sequence_subclasses_become_plain() -> None:
    class MyList(list[Any]):
        pass

    dd: collections.defaultdict[str, list[int]] = collections.defaultdict(list, a=[1])
    value = {"od": collections.OrderedDict(b=(2,)), "dd": dd, "ml": MyList([(3,)])}
    assert_same(roundtrip(value), {"od": {"b": (2,)}, "dd": {"a": [1]}, "ml": [(3,)]})


def test_pydantic_models() -> None:
    ser = Serializer()
    for cls in (Address, Person, Color, FrozenModel):
        ser.register(cls)
    person = Person(
        name="Ada", addresses=[Address(city="London", coords=(51.5, -0.12))], color=Color.GREEN
    )
    frozen = FrozenModel(key="k", note=(1, 2))
    back = roundtrip({"p": person, "f": frozen}, ser)
    assert back["p"] == person
    assert type(back["p"]) is Person
    assert type(back["p"].addresses[0]) is Address
    assert type(back["p"].addresses[0].coords) is tuple
    assert back["p"].color is Color.GREEN
    assert back["p"].model_fields_set == person.model_fields_set
    assert back["f"] == frozen
    assert back["f"].note == (1, 2)
    with pytest.raises(pydantic.ValidationError):
        back["f"].key = "other"


def test_unregistered_pydantic_model_is_an_error() -> None:
    with pytest.raises(SerializationError, match="pydantic model that is not registered"):
        Serializer().dumps(Address(city="x", coords=(0, 0)), channel="addr")


def test_engine_types_are_builtin() -> None:
    value = [
        Interrupt(value={"question": "approve?", "amount": (1, 2)}, id="abc"),
        Send("node", {"arg": (1,)}),
        Command(resume={"abc": True}, goto=(Send("a", 1), "b"), update={"k": b"v"}),
        Command(graph=Command.PARENT, goto="x"),
    ]
    for ser in (Serializer(), default_serializer):
        back = roundtrip(value, ser)
        assert back == value
        assert [type(v) for v in back] == [type(v) for v in value]
        assert type(back[2].goto) is tuple
        assert type(back[2].update["k"]) is bytes


def test_scalar_subclasses_collapse_to_the_base_type() -> None:
    class Name(str):
        def __str__(self) -> str:
            return "overridden"

    class Big(int):
        pass

    back = roundtrip([Name("ada"), Big(5), Big(2**70)])
    assert_same(back, ["ada", 5, 2**70])


# --- errors ----------------------------------------------------------------------------------


def test_unregistered_dataclass_names_type_channel_and_fix() -> None:
    with pytest.raises(SerializationError) as info:
        Serializer().dumps({"x": [Unregistered(1)]}, channel="foo")
    message = str(info.value)
    assert f"'{__name__}.Unregistered'" in message
    assert "in channel 'foo'" in message
    assert "Fix: call hitl_async.register_type(Unregistered) once" in message


def test_unsupported_class_names_type_channel_and_fix() -> None:
    with pytest.raises(SerializationError) as info:
        Serializer().dumps((1, Plain()), channel="bar")
    message = str(info.value)
    assert f"'{__name__}.Plain'" in message
    assert "in channel 'bar'" in message
    assert "hitl_async.register_type(Plain)" in message


def test_error_without_channel_does_not_mention_one() -> None:
    with pytest.raises(SerializationError) as info:
        Serializer().dumps(object())
    assert "channel" not in str(info.value)
    assert "'builtins.object'" in str(info.value)


@pytest.mark.parametrize("value", [Color.RED, Level.LOW, Mode.FAST], ids=repr)
def test_unregistered_enum_is_an_error_even_if_it_is_an_int_or_str(value: enum.Enum) -> None:
    with pytest.raises(SerializationError, match="Enum that is not registered"):
        Serializer().dumps(value)


def test_unsupported_tzinfo_is_an_error() -> None:
    class Odd(dt.tzinfo):
        def utcoffset(self, d: Any) -> dt.timedelta:
            return dt.timedelta(0)

    message = r"'datetime\.datetime' in channel 'when': its tzinfo"
    with pytest.raises(SerializationError, match=message):
        Serializer().dumps(dt.datetime(2020, 1, 1, tzinfo=Odd()), channel="when")


@pytest.mark.parametrize(
    "name", ["os:system", "subprocess.Popen", f"{EVIL}.Evil", f"{EVIL}:Evil", "builtins.eval"]
)
def test_crafted_type_name_is_refused_without_import(name: str, imports: ImportRecorder) -> None:
    data = crafted(EXT_REGISTERED, [name, {"args": ["rm -rf /"]}])
    with pytest.raises(SerializationError, match="no class is registered under that name"):
        Serializer().loads(data)
    assert EVIL not in sys.modules
    assert imports.names == []


def test_crafted_zone_key_is_refused(imports: ImportRecorder) -> None:
    for key in [EVIL, "../../../etc/passwd", "/etc/localtime", "Europe/../../x"]:
        data = crafted(5, [2020, 1, 1, 0, 0, 0, 0, 0, key])
        with pytest.raises(SerializationError, match="unknown time zone"):
            Serializer().loads(data)
    assert EVIL not in sys.modules
    assert not any(EVIL in name for name in imports.names)


@pytest.mark.parametrize("code", [12, 42, 63, 64, 127, -5, -128])
def test_unknown_ext_code_is_refused(code: int) -> None:
    data = seal(b"\x92\x01\xd4" + code.to_bytes(1, "big", signed=True) + b"\x00")  # [1, fixext1]
    with pytest.raises(SerializationError, match=f"unknown extension type code {code}"):
        Serializer().loads(data)


@pytest.mark.parametrize(
    "data",
    [
        crafted(1, 5),  # tuple payload that is not an array
        crafted(5, [2020, 13, 1, 0, 0, 0, 0, 0, None]),  # month 13
        crafted(9, "x"),  # UUID of the wrong size
        seal(msgpack.packb(msgpack.ExtType(10, b"not a number"))),
        crafted(EXT_REGISTERED, "no list"),
        crafted(EXT_REGISTERED, ["hitl_async.Send", {"node": "x"}]),  # missing field
        crafted(EXT_REGISTERED, ["hitl_async.Send", {"node": "x", "arg": 1, "bad": 2}]),
        crafted(2, [[1], [2]]),  # unhashable set items
        seal(msgpack.packb({(1,): 2}, use_bin_type=True)),  # array key: unhashable
    ],
)
def test_malformed_payloads_are_serialization_errors(data: bytes) -> None:
    with pytest.raises(SerializationError):
        Serializer().loads(data)


def test_unknown_member_of_registered_enum() -> None:
    ser = Serializer()
    ser.register(Color)
    data = crafted(EXT_REGISTERED, [f"{__name__}.Color", "PURPLE"])
    with pytest.raises(SerializationError, match="has no member 'PURPLE'"):
        ser.loads(data)


def rich_value() -> Any:
    return {
        "action": "transfer",
        "amount": Decimal("500.00"),
        "when": dt.datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Paris")),
        "who": (uuid.UUID(int=1), frozenset({1, 2})),
        "big": 2**100,
        "blob": b"raw",
        "interrupt": Interrupt(value={"q": (1, 2)}, id="i1"),
        "cmd": Command(goto=(Send("n", {"k": {1, 2}}),)),
    }


def test_every_truncation_is_a_serialization_error() -> None:
    ser = Serializer()
    data = ser.dumps(rich_value())
    assert_same(ser.loads(data), rich_value())
    for end in range(len(data)):
        with pytest.raises(SerializationError):
            ser.loads(data[:end])


@pytest.mark.parametrize(
    "data", [b"\xc1", b"\xc1\x00\x01", bytes(range(0xC1, 0xFF)), b"\x92\x01\x02\x03", b""]
)
def test_invalid_bytes_are_serialization_errors(data: bytes) -> None:
    with pytest.raises(SerializationError):
        Serializer().loads(data)


def test_random_bytes_are_serialization_errors() -> None:
    rng = random.Random(1234)
    ser = Serializer()
    failures = 0
    for _ in range(500):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64)))
        try:
            ser.loads(data)
        except SerializationError:
            failures += 1
    assert failures > 400  # the rest happen to be valid msgpack; nothing else may escape


def test_corrupted_payloads_only_raise_serialization_error(imports: ImportRecorder) -> None:
    rng = random.Random(99)
    ser = Serializer()
    good = ser.dumps(rich_value())
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        with contextlib.suppress(SerializationError):
            ser.loads(bytes(data))
    assert imports.names == []


def test_reference_cycle_is_a_serialization_error() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match=r"in channel 'c': .*reference cycle"):
        Serializer().dumps({"k": cycle}, channel="c")
    nested: list[Any] = []
    for _ in range(5000):
        nested = [nested]
    with pytest.raises(SerializationError, match="nests too deeply"):
        Serializer().dumps(nested)


def test_loads_rejects_non_bytes() -> None:
    with pytest.raises(SerializationError):
        Serializer().loads("not bytes")  # type: ignore[arg-type]


# --- registry --------------------------------------------------------------------------------


def test_register_is_a_decorator_and_idempotent() -> None:
    ser = Serializer()

    @dataclasses.dataclass
    class Local:
        v: int

    assert ser.register(Local) is Local
    assert ser.register(Local) is Local
    assert ser.register(Local, name=f"{Local.__module__}.{Local.__qualname__}") is Local
    assert roundtrip(Local(3), ser) == Local(3)


def test_register_name_conflict_names_both_classes() -> None:
    ser = Serializer()

    @dataclasses.dataclass
    class First:
        v: int

    @dataclasses.dataclass
    class Second:
        v: int

    ser.register(First, name="shared")
    with pytest.raises(ValueError, match=r"Second as 'shared'.*taken by .*First"):
        ser.register(Second, name="shared")
    with pytest.raises(ValueError, match="already registered as 'shared'"):
        ser.register(First, name="other")
    with pytest.raises(ValueError, match=r"hitl_async\.Send"):
        ser.register(Second, name="hitl_async.Send")


def test_register_refuses_unsupported_classes() -> None:
    with pytest.raises(TypeError, match="only dataclasses"):
        Serializer().register(Plain)


def test_custom_name_is_what_the_data_stores() -> None:
    @dataclasses.dataclass
    class Renamed:
        v: int

    writer = Serializer()
    writer.register(Renamed, name="stable.Name")
    data = writer.dumps(Renamed(1))
    assert b"stable.Name" in data
    reader = Serializer()
    with pytest.raises(SerializationError, match=r"'stable\.Name'"):
        reader.loads(data)
    reader.register(Renamed, name="stable.Name")
    assert reader.loads(data) == Renamed(1)


def test_instance_registry_is_copied_from_the_defaults() -> None:
    @dataclasses.dataclass
    class GlobalDC:
        v: int

    @dataclasses.dataclass
    class InstanceOnly:
        v: int

    before = Serializer()
    assert register_type(GlobalDC) is GlobalDC
    assert register_type(GlobalDC) is GlobalDC
    after = Serializer()
    assert after.loads(after.dumps(GlobalDC(1))) == GlobalDC(1)
    assert default_serializer.loads(default_serializer.dumps(GlobalDC(2))) == GlobalDC(2)
    with pytest.raises(SerializationError):
        before.dumps(GlobalDC(1))
    before.register(InstanceOnly)
    with pytest.raises(SerializationError):
        Serializer().dumps(InstanceOnly(1))
    with pytest.raises(SerializationError):
        default_serializer.dumps(InstanceOnly(1))


# --- annotations -----------------------------------------------------------------------------


class Status(enum.Enum):
    OPEN = "open"
    DONE = "done"


class Priority(enum.Enum):
    P1 = 1


@dataclasses.dataclass
class Approval:
    who: str
    at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    approval: Optional[Approval] = None  # noqa: UP045 - testing typing.Optional on purpose


@dataclasses.dataclass
class Tree:
    label: str
    children: list["Tree"] = dataclasses.field(default_factory=list)


class Span(NamedTuple):
    start: int
    status: Status


def keep_last(a: Any, b: Any) -> Any:
    return b


class State(TypedDict):
    steps: Annotated[list[Step], keep_last]
    by_status: dict[Status, tuple[Span, ...]]
    maybe: Annotated[typing.Union[Tree, None], "meta"]  # noqa: UP007 - on purpose
    literal: typing.Literal[Priority.P1]
    plain: int


def state_value() -> dict[str, Any]:
    when = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    return {
        "steps": [Step("a"), Step("b", Approval("ann", when))],
        "by_status": {Status.OPEN: (Span(1, Status.OPEN),)},
        "maybe": Tree("root", [Tree("leaf")]),
        "literal": Priority.P1,
        "plain": 1,
    }


def test_register_types_from_typeddict_annotation() -> None:
    ser = Serializer()
    with pytest.raises(SerializationError):
        ser.dumps(state_value())
    ser.register_types_from_annotation(State)
    assert_same(roundtrip(state_value(), ser), state_value())


def test_module_level_register_types_from_annotation() -> None:
    register_types_from_annotation(Optional[State])  # noqa: UP045
    assert default_serializer.loads(default_serializer.dumps(state_value())) == state_value()
    fresh = Serializer()
    assert_same(fresh.loads(fresh.dumps(state_value())), state_value())


if pydantic is not None:

    class Tag(enum.Enum):
        URGENT = "urgent"

    @dataclasses.dataclass
    class Attachment:
        name: str

    class Note(pydantic.BaseModel):
        text: str
        tags: set[Tag] = set()

    class Ticket(pydantic.BaseModel):
        notes: list[Note]
        attachments: dict[str, Attachment | None] = {}
        parent: Optional["Ticket"] = None


def test_register_types_from_pydantic_annotation() -> None:
    ser = Serializer()
    ticket = Ticket(
        notes=[Note(text="hi", tags={Tag.URGENT})],
        attachments={"a": Attachment("f.txt"), "b": None},
        parent=Ticket(notes=[]),
    )
    with pytest.raises(SerializationError):
        ser.dumps(ticket)
    ser.register_types_from_annotation(Annotated[list[Ticket], "reducer"])
    back = roundtrip(ticket, ser)
    assert back == ticket
    assert type(back.notes[0]) is Note
    assert type(back.attachments["a"]) is Attachment
    assert type(back.parent) is Ticket


# --- a value that cannot be stored: the error names the type, the channel and the fix ----------


@dataclasses.dataclass
class NotInSchema:
    x: int


def test_unstorable_node_output_names_type_channel_and_an_exported_fix() -> None:
    """#13 item 7: the one call the message names is exported where the message says."""
    import re
    from typing import Any as _Any

    import hitl_async
    from hitl_async import END, START, InMemorySaver, StateGraph

    class State(TypedDict, total=False):
        payload: _Any

    builder = StateGraph(State)
    builder.add_node("make", lambda s: {"payload": NotInSchema(1)})
    builder.add_edge(START, "make")
    builder.add_edge("make", END)
    graph = builder.compile(checkpointer=InMemorySaver())
    with pytest.raises(SerializationError) as info:
        graph.invoke({}, {"configurable": {"thread_id": "unstorable"}})
    message = str(info.value)
    assert f"'{__name__}.NotInSchema'" in message
    assert "'payload'" in message and "node 'make'" in message
    call = re.search(r"Fix: call (hitl_async\.(\w+))\(NotInSchema\)", message)
    assert call is not None, message
    assert callable(getattr(hitl_async, call.group(2)))
    getattr(hitl_async, call.group(2))(NotInSchema)  # and it does fix it
    graph = builder.compile(checkpointer=InMemorySaver())
    out = graph.invoke({}, {"configurable": {"thread_id": "stored"}})
    assert out == {"payload": NotInSchema(1)}


def test_an_input_that_cannot_be_stored_is_named_as_the_graphs_input() -> None:
    from typing_extensions import TypedDict

    from hitl_async import InMemorySaver
    from hitl_async.graph import START, StateGraph

    class State(TypedDict):
        x: Any

    g = StateGraph(State)
    g.add_node("n", lambda s: {})
    g.add_edge(START, "n")
    app = g.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "bad-input"}}
    with pytest.raises(SerializationError, match='in channel "the graph\'s input"'):
        app.invoke({"x": Unregistered(1)}, config)
    assert app.get_state(config).values == {}
