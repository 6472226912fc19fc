"""The allow-list: how each registered class is turned into msgpack-able state and rebuilt.

Decoding looks a stored name up here and never imports anything. `DEFAULT_BY_NAME` /
`DEFAULT_BY_TYPE` hold what every new `Serializer` starts from (the engine's own types and what
`register_type` added); `walk_annotation` finds registrable classes in a state schema.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
import typing
from collections.abc import Callable
from typing import Any

import typing_extensions

from hitl_async.types import Command, Interrupt, Overwrite, Send, TimeoutPolicy

__all__ = [
    "DEFAULT_BY_NAME",
    "DEFAULT_BY_TYPE",
    "Entry",
    "is_namedtuple",
    "make_entry",
    "prepare_entry",
    "pydantic_base",
    "qualname",
    "walk_annotation",
]

_INITVAR = getattr(dataclasses, "_FIELD_INITVAR", object())
# pydantic's own models are not state; langchain-core's messages are allowed by name already
# (hitl_async.serde.langchain), and its other models are not data a state holds.
_NOT_WALKED = ("pydantic", "langchain_core.")


def qualname(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"


def pydantic_base() -> type | None:
    """pydantic's BaseModel if pydantic is loaded; no model can exist otherwise, so never import."""
    mod = sys.modules.get("pydantic.main")
    return getattr(mod, "BaseModel", None) if mod is not None else None


def is_namedtuple(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


# --- registry entries ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """How one registered class is turned into msgpack-able state and rebuilt from it."""

    name: str
    cls: type
    to_state: Callable[[Any], Any]
    from_state: Callable[[Any], Any]


def _enum_entry(cls: type[enum.Enum], name: str) -> Entry:
    if issubclass(cls, enum.Flag):
        # Composite flags have no single member name: store the value.
        return Entry(name, cls, lambda obj: obj._value_, cls)

    def from_state(state: Any) -> Any:
        if type(state) is not str:
            raise TypeError(f"expected a member name, got {type(state).__name__}")
        try:
            return cls[state]
        except KeyError:
            raise ValueError(f"{cls.__qualname__} has no member {state!r}") from None

    return Entry(name, cls, lambda obj: obj._name_, from_state)


def _dataclass_entry(cls: type, name: str) -> Entry:
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    has_initvar = any(
        getattr(f, "_field_type", None) is _INITVAR
        for f in getattr(cls, "__dataclass_fields__", {}).values()
    )

    def to_state(obj: Any) -> dict[str, Any]:
        return {n: getattr(obj, n) for n in names}

    if all(f.init for f in fields) and not has_initvar:

        def from_state(state: Any) -> Any:
            if type(state) is not dict:
                raise TypeError(f"expected a dict of fields, got {type(state).__name__}")
            return cls(**state)

        return Entry(name, cls, to_state, from_state)

    # init=False fields or InitVars: the constructor cannot take the stored fields back, so set
    # them directly (object.__setattr__ also works for frozen and slots dataclasses).
    def from_state_raw(state: Any) -> Any:
        if type(state) is not dict:
            raise TypeError(f"expected a dict of fields, got {type(state).__name__}")
        unknown = state.keys() - set(names)
        if unknown:
            raise TypeError(f"unexpected field(s) {sorted(map(str, unknown))}")
        obj: Any = object.__new__(cls)
        for f in fields:
            if f.name in state:
                value = state[f.name]
            elif f.default is not dataclasses.MISSING:
                value = f.default
            elif f.default_factory is not dataclasses.MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"missing field {f.name!r}")
            object.__setattr__(obj, f.name, value)
        return obj

    return Entry(name, cls, to_state, from_state_raw)


def _namedtuple_entry(cls: type, name: str) -> Entry:
    def from_state(state: Any) -> Any:
        if type(state) is not list:
            raise TypeError(f"expected a list of items, got {type(state).__name__}")
        return cls._make(state)  # type: ignore[attr-defined]

    return Entry(name, cls, list, from_state)


def _pydantic_entry(cls: Any, name: str) -> Entry:
    # Field values go through this serializer one by one (not model_dump(), which would flatten
    # nested models, tuples, ... to plain data), so they come back with their exact types.
    def to_state(obj: Any) -> list[Any]:
        fields = {n: getattr(obj, n) for n in cls.model_fields}
        return [fields, obj.__pydantic_extra__ or None, sorted(obj.model_fields_set)]

    # Rebuilt with model_construct, not model_validate: the values were validated when the model
    # was made and come back with their exact types, so revalidating would only cost time on every
    # superstep and could reject or alter a checkpoint written under older validators.
    # model_construct restores exactly what was saved, including model_fields_set. Private
    # attributes are not stored (as with model_dump); they are reset to their defaults.
    def from_state(state: Any) -> Any:
        if type(state) is not list or len(state) != 3:
            raise TypeError("expected [fields, extra, fields_set]")
        fields, extra, fields_set = state
        if type(fields) is not dict:
            raise TypeError(f"expected a dict of fields, got {type(fields).__name__}")
        missing = [n for n, f in cls.model_fields.items() if f.is_required() and n not in fields]
        if missing:
            # model_construct would build a model without these attributes (it fills only the
            # fields that have defaults), failing far from here: refuse the stored value instead
            raise TypeError(f"required field(s) {missing} are missing")
        values = dict(fields)
        if extra:
            values.update(extra)
        return cls.model_construct(_fields_set=set(fields_set), **values)

    return Entry(name, cls, to_state, from_state)


def make_entry(cls: type, name: str) -> Entry:
    if not isinstance(cls, type):
        raise TypeError(f"register() takes a class, got {cls!r}")
    if issubclass(cls, enum.Enum):
        return _enum_entry(cls, name)
    if dataclasses.is_dataclass(cls):
        return _dataclass_entry(cls, name)
    if is_namedtuple(cls):
        return _namedtuple_entry(cls, name)
    base = pydantic_base()
    if base is not None and issubclass(cls, base) and cls is not base:
        return _pydantic_entry(cls, name)
    raise TypeError(
        f"cannot register {qualname(cls)}: only dataclasses, Enum subclasses, NamedTuples and "
        "pydantic (v2) models can be registered"
    )


def prepare_entry(
    by_name: dict[str, Entry], by_type: dict[type, Entry], cls: type, name: str | None
) -> Entry | None:
    """Validate a registration; the new entry, or None when it is already there (a no-op). A
    class registered under its default name replaces an older class of that name (the same
    class defined again); another class under a taken name is a ValueError."""
    existing = by_type.get(cls)
    if existing is not None:
        if name is None or name == existing.name:
            return None
        raise ValueError(
            f"{qualname(cls)} is already registered as {existing.name!r}; "
            f"cannot register it again as {name!r}"
        )
    redefined = name is None  # a class defined again under its name (a re-run cell, a test)
    if name is None:
        name = qualname(cls)
    elif not isinstance(name, str) or not name:
        raise ValueError(f"a registered name must be a non-empty str, got {name!r}")
    other = by_name.get(name)
    if other is not None and not (redefined and qualname(other.cls) == name):
        raise ValueError(
            f"cannot register {qualname(cls)} as {name!r}: that name is already taken by "
            f"{qualname(other.cls)}; pass register_type(..., name='...') with another name"
        )
    return make_entry(cls, name)


DEFAULT_BY_NAME: dict[str, Entry] = {}
DEFAULT_BY_TYPE: dict[type, Entry] = {}

_BUILTIN_TYPES: tuple[tuple[type, str], ...] = (
    (Interrupt, "hitl_async.Interrupt"),
    (Send, "hitl_async.Send"),
    (Command, "hitl_async.Command"),
    (Overwrite, "hitl_async.Overwrite"),
    (TimeoutPolicy, "hitl_async.TimeoutPolicy"),  # (a `Send`'s timeout)
)
for _cls, _name in _BUILTIN_TYPES:
    _entry = make_entry(_cls, _name)
    DEFAULT_BY_NAME[_name] = DEFAULT_BY_TYPE[_cls] = _entry


# --- annotations -----------------------------------------------------------------------------


def _hints(cls: type) -> list[Any]:
    """The resolved annotations of a class; unresolvable string annotations are skipped."""
    try:
        return list(typing.get_type_hints(cls, include_extras=True).values())
    except Exception:
        if dataclasses.is_dataclass(cls):
            return [f.type for f in dataclasses.fields(cls)]
        annotations: list[Any] = []
        for klass in reversed(cls.__mro__):
            annotations.extend(inspect.get_annotations(klass).values())
        return annotations


def walk_annotation(tp: Any, register: Callable[[type], object]) -> None:
    """Find every dataclass, Enum, NamedTuple and pydantic model in `tp` and `register` it."""
    seen: dict[int, Any] = {}  # id -> object, which keeps the object (and its id) alive
    stack = [tp]
    while stack:
        t = stack.pop()
        if id(t) in seen or t is None or t is Ellipsis or isinstance(t, (str, typing.ForwardRef)):
            continue
        seen[id(t)] = t
        origin = typing.get_origin(t)
        if origin is typing.Annotated:
            stack.append(typing.get_args(t)[0])
            continue
        if origin is typing.Literal:
            stack.extend(type(a) for a in typing.get_args(t) if isinstance(a, enum.Enum))
            continue
        if origin is not None:
            stack.append(origin)
            for arg in typing.get_args(t):
                stack.extend(arg if isinstance(arg, list) else (arg,))  # Callable[[A], B]
            continue
        if isinstance(t, typing.TypeVar):
            stack.extend((t.__bound__, *t.__constraints__))
            continue
        if isinstance(t, typing.NewType):
            stack.append(t.__supertype__)
            continue
        if not isinstance(t, type):
            continue
        if typing_extensions.is_typeddict(t):
            stack.extend(_hints(t))
        elif issubclass(t, enum.Enum):
            if t.__members__:
                register(t)
        elif dataclasses.is_dataclass(t) or is_namedtuple(t):
            register(t)
            stack.extend(_hints(t))
        elif not t.__module__.startswith(_NOT_WALKED):
            base = pydantic_base()
            if base is not None and issubclass(t, base):
                register(t)
                model_fields: dict[str, Any] = getattr(t, "model_fields", {})
                stack.extend(f.annotation for f in model_fields.values())
