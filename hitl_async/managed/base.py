"""Managed values: state keys the engine computes for each step instead of storing them.

A key annotated `Annotated[T, SomeManagedValue]` (a subclass of `ManagedValue`) is not a state
channel: no node writes it, it is not checkpointed nor returned, and input for it is ignored.
Every node and conditional edge reading the state sees it with the value `get(scratchpad)`
gives for the step, as LangGraph's managed values (`langgraph.managed`) do.
"""

from __future__ import annotations

import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass
from inspect import isclass
from typing import Any, Generic, TypeGuard, TypeVar

__all__ = [
    "ManagedValue",
    "ManagedValueMapping",
    "ManagedValueSpec",
    "StepWindow",
    "is_managed_value",
    "managed_value_of",
    "managed_values",
]

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class StepWindow:
    """Where the run is in its recursion budget: `step` is the number of the current superstep
    in this invocation (1 for the first), `stop` the step the budget (`recursion_limit`) ends
    at; `stop - step` supersteps may still follow this one."""

    step: int
    stop: int


class ManagedValue(ABC, Generic[V]):
    """A value computed for each step from the run's `StepWindow`."""

    @staticmethod
    @abstractmethod
    def get(scratchpad: StepWindow) -> V:
        """The value for the step `scratchpad` describes."""


ManagedValueSpec = type[ManagedValue[Any]]
ManagedValueMapping = dict[str, ManagedValueSpec]


def is_managed_value(value: Any) -> TypeGuard[ManagedValueSpec]:
    """True for a `ManagedValue` subclass."""
    return isclass(value) and issubclass(value, ManagedValue)


def managed_value_of(annotation: Any) -> ManagedValueSpec | None:
    """The `ManagedValue` an annotation names (`Annotated[int, RemainingStepsManager]`, also
    under `NotRequired[...]`/`Required[...]`), or None for an ordinary state key."""
    while typing.get_origin(annotation) in (typing.NotRequired, typing.Required):
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is not typing.Annotated:
        return None
    for meta in annotation.__metadata__:
        if is_managed_value(meta):
            return meta
    return None


def managed_values(specs: ManagedValueMapping, window: StepWindow) -> dict[str, Any]:
    """Each managed key's value for the step `window` describes."""
    return {name: spec.get(window) for name, spec in specs.items()}
