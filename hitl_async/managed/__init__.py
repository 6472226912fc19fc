"""Managed state keys (`langgraph.managed`): `RemainingSteps` and `IsLastStep`, computed by the
engine for each step from `recursion_limit`, never stored.

    class State(TypedDict):
        messages: Annotated[list, add_messages]
        remaining_steps: RemainingSteps
"""

from hitl_async.managed.base import ManagedValue, StepWindow, is_managed_value
from hitl_async.managed.is_last_step import IsLastStep, RemainingSteps

__all__ = ["IsLastStep", "ManagedValue", "RemainingSteps", "StepWindow", "is_managed_value"]
