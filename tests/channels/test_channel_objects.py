"""The channel classes of `hitl_async.channels` used as channel objects, driven by hand as
LangGraph's `tests/test_channels.py` drives them: `update()` a step's writes, `get()`,
`checkpoint()` and `from_checkpoint()`. Each behaviour was checked against LangGraph 1.2.22."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import pytest

import hitl_async
from hitl_async import EmptyChannelError, InvalidUpdateError, Overwrite
from hitl_async._internal._typing import MISSING
from hitl_async.channels import (
    BaseChannel,
    BinaryOperatorAggregate,
    EphemeralValue,
    LastValue,
    Topic,
    UntrackedValue,
)


def test_last_value_holds_one_write_per_update_and_round_trips() -> None:
    """From LangGraph's test_last_value: an empty LastValue raises EmptyChannelError on get(),
    two writes in one update are an InvalidUpdateError, a single write replaces the value, and
    checkpoint()/from_checkpoint() carry the value to a fresh channel."""
    ch = LastValue(str).from_checkpoint(MISSING)
    assert ch.ValueType is str and ch.UpdateType is str
    assert not ch.is_available() and ch.checkpoint() is MISSING
    with pytest.raises(EmptyChannelError):
        ch.get()
    with pytest.raises(InvalidUpdateError, match="one value per step"):
        ch.update(["x", "y"])
    assert ch.update([]) is False
    assert ch.update(["first"]) is True and ch.get() == "first"
    ch.update(["second"])
    assert ch.get() == "second" and ch.is_available()
    restored = LastValue(str).from_checkpoint(ch.checkpoint())
    assert restored.get() == "second"


def test_last_value_from_checkpoint_leaves_the_spec_alone() -> None:
    """From LangGraph's test_last_value (its `from_checkpoint` pattern): the channel
    from_checkpoint() returns is a new object with the spec's key; copy() is independent."""
    spec = LastValue(int, key="count")
    ch = spec.from_checkpoint(7)
    assert ch is not spec and ch.key == "count" and not spec.is_available()
    twin = ch.copy()
    twin.update([8])
    assert (ch.get(), twin.get()) == (7, 8)
    assert ch.consume() is False and ch.finish() is False


def test_topic_starts_afresh_each_update_and_flattens_lists() -> None:
    """From LangGraph's test_topic: without accumulate, each update replaces the list, a
    written list adds its items, an empty update empties it (reporting a change only if it
    had items), and a channel restored from a checkpoint is independent of another."""
    ch = Topic(int).from_checkpoint(MISSING)
    assert ch.ValueType == Sequence[int] and ch.UpdateType == int | list[int]
    assert ch.update([1, 2]) and ch.get() == [1, 2]
    assert ch.update([[3, 4], 5]) and ch.get() == [3, 4, 5]
    assert ch.update([]) is True
    with pytest.raises(EmptyChannelError):
        ch.get()
    assert ch.update([]) is False
    assert ch.update([9]) and ch.checkpoint() == [9]
    one = Topic(int).from_checkpoint(ch.checkpoint())
    other = Topic(int).from_checkpoint(ch.checkpoint())
    other.update([10])
    assert (one.get(), other.get()) == ([9], [10])


def test_topic_accumulate_adds_across_updates() -> None:
    """From LangGraph's test_topic_accumulate: with accumulate=True writes pile up across
    updates, an empty update changes nothing, and the list survives a checkpoint."""
    ch = Topic(str, accumulate=True).from_checkpoint(MISSING)
    assert ch.update(["p"]) and ch.update([["q", "r"], "s"])
    assert ch.update([]) is False
    assert ch.get() == ["p", "q", "r", "s"]
    restored = Topic(str, accumulate=True).from_checkpoint(ch.checkpoint())
    assert restored.update(["t"]) and restored.get() == ["p", "q", "r", "s", "t"]


def test_binop_folds_writes_from_the_empty_value() -> None:
    """From LangGraph's test_binop: the fold starts from `typ()` (0 for int, so get() works
    before any write), folds every write of an update, and survives a checkpoint."""
    ch = BinaryOperatorAggregate(int, operator.add).from_checkpoint(MISSING)
    assert ch.ValueType is int and ch.UpdateType is int
    assert ch.get() == 0
    assert ch.update([]) is False
    ch.update([5, 10])
    ch.update([1])
    assert ch.get() == 16
    assert BinaryOperatorAggregate(int, operator.add).from_checkpoint(ch.checkpoint()).get() == 16
    assert BinaryOperatorAggregate(Sequence[str], operator.add).get() == []


def test_binop_overwrite_replaces_and_drops_later_writes() -> None:
    """LangGraph's Overwrite on a BinaryOperatorAggregate (test_binop's channel, with the
    Overwrite of its delta tests): Overwrite(v), or its JSON form, replaces the value and the
    writes after it in the update are dropped; two in one update are an InvalidUpdateError."""
    ch = BinaryOperatorAggregate(list, operator.add).from_checkpoint(["old"])
    assert ch.update([["a"], Overwrite(["new"]), ["dropped"]])
    assert ch.get() == ["new"]
    ch.update([{"__overwrite__": ["json"]}, ["more"]])
    assert ch.get() == ["json"]
    with pytest.raises(InvalidUpdateError, match="one Overwrite"):
        ch.update([Overwrite([1]), Overwrite([2])])


def test_binop_with_an_unbuildable_type_starts_empty() -> None:
    """LangGraph's BinaryOperatorAggregate on a type with no empty value: it is empty until
    the first write, which becomes the value the rest are folded into."""

    class Pair:
        def __init__(self, a: int) -> None:
            self.a = a

    ch = BinaryOperatorAggregate(Pair, lambda old, new: new).from_checkpoint(MISSING)
    assert not ch.is_available()
    with pytest.raises(EmptyChannelError):
        ch.get()
    first, second = Pair(1), Pair(2)
    assert ch.update([first, second]) and ch.get() is second


def test_ephemeral_value_clears_on_an_empty_update() -> None:
    """LangGraph's EphemeralValue: an empty update clears it (a change only if it held a
    value), guard=True rejects two writes in one update, guard=False keeps the last."""
    ch = EphemeralValue(str).from_checkpoint(MISSING)
    assert ch.update([]) is False
    assert ch.update(["now"]) and ch.get() == "now" and ch.checkpoint() == "now"
    assert ch.update([]) is True and not ch.is_available()
    with pytest.raises(EmptyChannelError):
        ch.get()
    with pytest.raises(InvalidUpdateError, match="guard=False"):
        ch.update(["a", "b"])
    loose = EphemeralValue(str, guard=False).from_checkpoint(MISSING)
    assert loose.update(["a", "b"]) and loose.get() == "b"


def test_untracked_value_is_never_checkpointed() -> None:
    """From LangGraph's test_untracked_value: writes replace the value, checkpoint() returns
    MISSING, and a channel restored from any checkpoint is empty; copy() keeps the value."""
    ch = UntrackedValue(dict).from_checkpoint(MISSING)
    assert ch.ValueType is dict and ch.UpdateType is dict
    with pytest.raises(EmptyChannelError):
        ch.get()
    ch.update([{"tmp": "/a"}])
    ch.update([{"tmp": "/b"}])
    assert ch.get() == {"tmp": "/b"}
    assert ch.checkpoint() is MISSING
    assert ch.copy().get() == {"tmp": "/b"}
    for stored in (MISSING, {"tmp": "/c"}):
        assert not UntrackedValue(dict).from_checkpoint(stored).is_available()
    with pytest.raises(InvalidUpdateError):
        ch.update([{}, {}])


def test_empty_channel_error_is_exported_and_base_is_abstract() -> None:
    """LangGraph's `langgraph.errors.EmptyChannelError` is importable from hitl_async, and
    BaseChannel (abstract in LangGraph) cannot be built on its own."""
    assert "EmptyChannelError" in hitl_async.__all__
    assert hitl_async.errors.EmptyChannelError is EmptyChannelError
    with pytest.raises(TypeError):
        BaseChannel(int)  # type: ignore[abstract]


def test_channel_value_does_not_change_annotation_equality() -> None:
    """The engine compares channel annotations by class and settings: a channel holding a
    value still equals (and hashes as) a fresh one, so schemas read the same."""
    used = LastValue(int).from_checkpoint(3)
    assert used == LastValue(int) and hash(used) == hash(LastValue(int))
    topic = Topic(str, accumulate=True).from_checkpoint(["x"])
    assert topic == Topic(str, accumulate=True) and topic != Topic(str)


def test_binop_reads_overwrite_json_forms_and_only_those() -> None:
    """From LangGraph's test_overwrite_dataclass_form_survives_json_roundtrip,
    test_overwrite_sentinel_dict_still_recognised and
    test_overwrite_non_matching_dict_not_recognised: an Overwrite that went through JSON
    (`{"type": "__overwrite__", "value": v}`) or the `{"__overwrite__": v}` form still
    replaces the value; a dict without that marker is an ordinary write."""
    ch = BinaryOperatorAggregate(dict, lambda old, new: {**old, **new}).from_checkpoint({"k": 0})
    ch.update([{"type": "__overwrite__", "value": {"a": 1}}])
    assert ch.get() == {"a": 1}
    ch.update([{"__overwrite__": {"b": 2}}])
    assert ch.get() == {"b": 2}
    ch.update([{"value": 3}, {"type": "human", "value": "hi"}])
    assert ch.get() == {"b": 2, "value": "hi", "type": "human"}
