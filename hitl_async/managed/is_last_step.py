"""`RemainingSteps` and `IsLastStep`: how much of `recursion_limit` the run has left."""

from __future__ import annotations

from typing import Annotated

from hitl_async.managed.base import ManagedValue, StepWindow

__all__ = ["IsLastStep", "IsLastStepManager", "RemainingSteps", "RemainingStepsManager"]


class IsLastStepManager(ManagedValue[bool]):
    """True in the step after which one more would exceed the recursion limit."""

    @staticmethod
    def get(scratchpad: StepWindow) -> bool:
        return scratchpad.step == scratchpad.stop - 1


class RemainingStepsManager(ManagedValue[int]):
    """The supersteps the run may still take after this one before the recursion limit."""

    @staticmethod
    def get(scratchpad: StepWindow) -> int:
        return scratchpad.stop - scratchpad.step


IsLastStep = Annotated[bool, IsLastStepManager]
RemainingSteps = Annotated[int, RemainingStepsManager]
