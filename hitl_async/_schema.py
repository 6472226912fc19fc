"""State schemas: which keys a graph's state has, how each key merges writes, and how a node sees
the state (a dict for a TypedDict schema, an instance for a dataclass or pydantic schema)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_type_hints

from typing_extensions import is_typeddict

from hitl_async.channels import (
    BaseChannel,
    BinaryOperatorAggregate,
    EphemeralValue,
    LastValue,
    Topic,
    UntrackedValue,
)
from hitl_async.channels.base import MISSING, empty_value
from hitl_async.errors import GraphValidationError, InvalidUpdateError
from hitl_async.managed.base import ManagedValueMapping, managed_value_of

__all__ = [
    "ROOT",
    "Field",
    "StateSchema",
    "UnknownStateKeyWarning",
    "annotated_with_class",
    "first_param_hint",
    "inferred_input_schema",
    "update_as_items",
]

_MISSING: Any = MISSING

ROOT = "$root"
"""The one channel of a root state schema (`StateGraph(Annotated[list, operator.add])`,
`StateGraph(int)`): the state is a single value, not a dict of keys."""


@dataclass(frozen=True, slots=True)
class Field:
    """One state key: its reducer (None: last value wins) and the value a reducer starts from."""

    name: str
    reducer: Callable[[Any, Any], Any] | None
    initial: Any = _MISSING
    kind: str = "last"
    """How the key keeps writes (see `hitl_async.channels`): "last" (the last value, or the
    reducer's fold), "ephemeral" (cleared after the step that follows its write), "topic" (a
    list of the writes), "untracked" (the last value, never checkpointed)."""
    guard: bool = True
    """"ephemeral"/"untracked": more than one write in a step is an error."""
    accumulate: bool = False
    """"topic": writes add up across steps (False: each step starts the list afresh)."""

    @property
    def has_initial(self) -> bool:
        return self.initial is not _MISSING


def _channel_field(name: str, annotation: Any) -> Field | None:
    """The field a channel annotation (`Annotated[str, EphemeralValue(str)]`, or the class
    alone: `Annotated[str, EphemeralValue]`) gives, as LangGraph reads a channel there before
    a reducer; None when the annotation names no channel."""
    while typing.get_origin(annotation) in (typing.NotRequired, typing.Required):
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is not typing.Annotated:
        return None
    for meta in annotation.__metadata__:
        if isinstance(meta, type) and issubclass(meta, BaseChannel):
            meta = meta(typing.get_args(annotation)[0])
        if isinstance(meta, BaseChannel):
            meta.key = name
            return _field_of_channel(name, meta)
    return None


def _field_of_channel(name: str, channel: BaseChannel[Any]) -> Field:
    if isinstance(channel, BinaryOperatorAggregate):
        return Field(name, channel.operator, empty_value(channel.typ))
    if isinstance(channel, EphemeralValue):
        return Field(name, None, kind="ephemeral", guard=channel.guard)
    if isinstance(channel, UntrackedValue):
        return Field(name, None, kind="untracked", guard=channel.guard)
    if isinstance(channel, Topic):
        return Field(name, None, kind="topic", accumulate=channel.accumulate)
    if isinstance(channel, LastValue):
        return Field(name, None)
    raise GraphValidationError(
        f"state key {name!r} is annotated with channel {channel!r}, which hitl-async does not "
        "support; use LastValue, EphemeralValue, Topic, BinaryOperatorAggregate or "
        "UntrackedValue (from hitl_async.channels), or Annotated[type, reducer]"
    )


def _reducer_of(annotation: Any) -> Callable[[Any, Any], Any] | None:
    if typing.get_origin(annotation) is not typing.Annotated:
        return None
    last = annotation.__metadata__[-1]
    if inspect.isfunction(last):  # LangGraph takes the last item for the reducer: check it
        sig = inspect.signature(last)
        kinds = [p.kind for p in sig.parameters.values()]
        if (
            inspect.Parameter.VAR_POSITIONAL not in kinds
            and sum(
                k in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                for k in kinds
            )
            != 2
        ):
            raise GraphValidationError(
                f"Invalid reducer signature. Expected (a, b) -> c. Got {last.__name__}{sig}: a "
                "reducer takes the current value and the update and returns the merged value"
            )
    for meta in reversed(annotation.__metadata__):
        if callable(meta) and not isinstance(meta, type):
            reducer: Callable[[Any, Any], Any] = meta
            try:
                params = [
                    p
                    for p in inspect.signature(meta).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                ]
            except (TypeError, ValueError):  # builtins without a signature, e.g. operator.add
                return reducer
            if len(params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params):
                return reducer
    return None


def _is_root(schema: Any) -> bool:
    """A schema that is one value: `Annotated[type, reducer]` or a type without keys (`int`,
    `list`, `str`...), as opposed to a TypedDict, dataclass, pydantic model or dict."""
    annotated = typing.get_origin(schema) is typing.Annotated
    base = typing.get_args(schema)[0] if annotated else schema
    base = typing.get_origin(base) or base
    if base is dict or is_typeddict(base) or _is_pydantic(base):
        return False
    if isinstance(base, type) and dataclasses.is_dataclass(base):
        return False
    return annotated or base in _ROOT_TYPES or base is Any


_ROOT_TYPES = (int, float, str, bytes, bool, list, tuple, set, frozenset)


def _is_pydantic(schema: Any) -> bool:
    return (
        isinstance(schema, type)
        and hasattr(schema, "model_fields")
        and hasattr(schema, "model_validate")
    )


class StateSchema:
    """Introspects a TypedDict, dataclass or pydantic v2 model used as graph state."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.fields: dict[str, Field] = {}
        self.defaults: dict[str, Any] = {}
        self.own: tuple[str, ...] = ()
        """The schema's own keys: what a node of this state sees (`fields` may have more)."""
        self.extra = False
        self.managed: ManagedValueMapping = {}
        """Keys the engine computes for each step (`RemainingSteps`...): seen, never stored."""
        if _is_root(schema):
            # A single-value state, as LangGraph's `__root__` channel: a node gets the value and
            # returns the new one (merged by the reducer of `Annotated[type, reducer]`, if any).
            self.kind = "root"
            channel = _channel_field(ROOT, schema)
            if channel is not None:
                self.fields[ROOT] = channel
            else:
                reducer = _reducer_of(schema)
                initial = empty_value(schema) if reducer is not None else _MISSING
                self.fields[ROOT] = Field(ROOT, reducer, initial)
            self.own = (ROOT,)
            return
        if is_typeddict(schema):
            self.kind = "typeddict"
        elif dataclasses.is_dataclass(schema) and isinstance(schema, type):
            self.kind = "dataclass"
        elif _is_pydantic(schema):
            self.kind = "pydantic"
        elif schema is dict:
            self.kind = "dict"
        else:
            raise GraphValidationError(
                f"state schema {schema!r} is not supported: use a TypedDict, a dataclass or a "
                "pydantic v2 model (with Annotated[type, reducer] for keys that merge writes), "
                "or a single type such as int or Annotated[list, operator.add]"
            )
        if self.kind == "dict":
            return
        hints = get_type_hints(schema, include_extras=True)
        names: list[str]
        if self.kind == "dataclass":
            names = [f.name for f in dataclasses.fields(schema)]
            for f in dataclasses.fields(schema):
                if f.default is not dataclasses.MISSING:
                    self.defaults[f.name] = f.default
        elif self.kind == "pydantic":
            names = list(schema.model_fields)
        else:
            names = list(hints)
        for name in names:
            annotation = hints.get(name, Any)
            spec = managed_value_of(annotation)
            if spec is not None:
                self.managed[name] = spec
                continue
            channel = _channel_field(name, annotation)
            if channel is not None:
                self.fields[name] = channel
                continue
            reducer = _reducer_of(annotation)
            initial = empty_value(annotation) if reducer is not None else _MISSING
            self.fields[name] = Field(name, reducer, initial)

        self.own = tuple(self.fields) + tuple(self.managed)

    def include(self, other: StateSchema) -> None:
        """Make the keys only `other` (an input or output schema) has state keys too, as
        LangGraph does: nodes may write them and the graph returns them; nodes don't see them."""
        if other is self or self.kind == "dict":
            return
        for name, f in other.fields.items():
            if name not in self.fields:
                self.fields[name] = f
                self.extra = True

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.fields)

    @property
    def is_root(self) -> bool:
        """The state is one value (a root schema), not a dict of keys."""
        return self.kind == "root"

    def present(self, values: dict[str, Any]) -> Any:
        """The state values (a dict of the state keys) as users see them: the value itself for
        a root schema."""
        return values.get(ROOT) if self.kind == "root" else values

    def view(self, values: Mapping[str, Any]) -> Any:
        """The state as a node receives it."""
        if self.kind == "root":
            return values.get(ROOT)
        if self.kind in ("typeddict", "dict"):
            return {k: values[k] for k in self.own if k in values} if self.own else dict(values)
        present = {k: values[k] for k in self.own if k in values}
        if self.kind == "pydantic":
            return self.schema.model_validate(present)
        try:
            return self.schema(**present)
        except TypeError as exc:
            missing = [k for k in self.own if k not in present and k not in self.defaults]
            raise InvalidUpdateError(
                f"cannot build state {self.schema.__name__}: {exc}. Keys without a value and "
                f"without a default: {missing}; give them a value in the input or a default."
            ) from exc

    def items(self, value: Any, *, source: str) -> list[tuple[str, Any]]:
        """(key, value) writes from a node's return value, input, or `Command.update`."""
        if self.kind == "root":
            return [] if value is None else [(ROOT, value)]
        items = update_as_items(value, source=source)
        if self.managed:  # computed by the engine: a value given for one is ignored
            items = [(k, v) for k, v in items if k not in self.managed]
        if self.fields and any(k not in self.fields for k, _ in items):
            unknown = [k for k, _ in items if k not in self.fields]
            _warn_unknown(source, tuple(unknown), tuple(self.fields))
            items = [(k, v) for k, v in items if k in self.fields]
        return items


@functools.lru_cache(maxsize=256)
def _warn_unknown(source: str, unknown: tuple[str, ...], known: tuple[str, ...]) -> None:
    """Unknown keys are dropped, as LangGraph does, but said once so a typo does not hide."""
    warnings.warn(
        f"{source} wrote key(s) {list(unknown)} that are not in the state {list(known)}; "
        "they were ignored",
        UnknownStateKeyWarning,
        stacklevel=3,
    )


class UnknownStateKeyWarning(UserWarning):
    """A node or input wrote a key the state schema does not have (the write is ignored)."""


def update_as_items(value: Any, *, source: str = "update") -> list[tuple[str, Any]]:
    """Normalize an update: dict, (key, value) pairs, dataclass or pydantic instance, or None."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    if hasattr(value, "model_fields_set") and hasattr(type(value), "model_fields"):
        # As LangGraph: every field but those that are None by default and were not set (a
        # node returning its mutated state writes what it changed in place too).
        fields_set = value.model_fields_set
        out = []
        for name, info in type(value).model_fields.items():
            v = getattr(value, name, None)
            if v is not None or name in fields_set or info.default is not None:
                out.append((name, v))
        return out
    if isinstance(value, (list, tuple)) and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value
    ):
        return list(value)
    raise InvalidUpdateError(
        f"{source} returned {type(value).__name__} {value!r:.80}; expected a dict of state "
        "updates, None, or a Command"
    )


def first_param_hint(fn: Any) -> Any | None:
    """The resolved annotation of a function's (or callable object's) first parameter; None
    when it is absent or unresolvable."""
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)):
        # a callable object: the annotation of its __call__
        if isinstance(fn, type) or not inspect.isfunction(
            inspect.getattr_static(type(fn), "__call__", None)
        ):
            return None
        fn = fn.__call__
    try:
        first = next(iter(inspect.signature(fn).parameters.values()), None)
        return get_type_hints(fn).get(first.name) if first is not None else None
    except Exception:  # (an annotation naming what is not importable here: no inference)
        return None


def annotated_with_class(fn: Any) -> bool:
    """Whether a router's first parameter is annotated with a class that has annotations (any
    state-like class, the state schema too): LangGraph then gives it the state alone, without
    the extra keys its node returned."""
    hint = first_param_hint(fn)
    if not isinstance(hint, type):
        return False
    try:
        return bool(get_type_hints(hint))
    except Exception:
        return False


def inferred_input_schema(fn: Any, state_schema: Any) -> Any | None:
    """The input schema LangGraph infers for a node: the class its first parameter is annotated
    with (a TypedDict, dataclass or pydantic model other than the state schema); None when the
    annotation is absent, unresolvable or not such a class. The node then sees only its keys."""
    hint = first_param_hint(fn)
    if not isinstance(hint, type) or hint is state_schema:
        return None
    keyed = (
        is_typeddict(hint)
        or dataclasses.is_dataclass(hint)
        or (hasattr(hint, "model_fields") and hasattr(hint, "model_validate"))
    )
    return hint if keyed else None
