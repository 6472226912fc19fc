"""Small names LangGraph code imports: `hitl_async.errors.ErrorCode` (and
`create_error_message`, LangGraph's wording of errors with a troubleshooting link),
`EmptyChannelError`, `TaskNotFound`, and the type variables of `hitl_async.typing`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic

from hitl_async import errors
from hitl_async import typing as hitl_typing
from hitl_async.errors import EmptyChannelError, ErrorCode, TaskNotFound, create_error_message

LANGGRAPH_CODES = [  # langgraph.errors.ErrorCode in LangGraph 1.2.22
    "GRAPH_RECURSION_LIMIT",
    "INVALID_CONCURRENT_GRAPH_UPDATE",
    "INVALID_GRAPH_NODE_RETURN_VALUE",
    "MULTIPLE_SUBGRAPHS",
    "INVALID_CHAT_HISTORY",
]


def test_error_codes_and_their_message_are_langgraphs() -> None:
    assert [c.value for c in ErrorCode] == LANGGRAPH_CODES == [c.name for c in ErrorCode]
    message = create_error_message(message="boom", error_code=ErrorCode.MULTIPLE_SUBGRAPHS)
    assert message == (
        "boom\nFor troubleshooting, visit: "
        "https://docs.langchain.com/oss/python/langgraph/errors/MULTIPLE_SUBGRAPHS"
    )
    assert {"ErrorCode", "EmptyChannelError", "TaskNotFound"} <= set(errors.__all__)
    assert issubclass(EmptyChannelError, Exception) and issubclass(TaskNotFound, Exception)


def test_the_type_variables_of_langgraph_typing() -> None:
    names = ("ContextT", "StateT", "StateT_co", "StateT_contra", "InputT", "OutputT")
    assert set(names) <= set(hitl_typing.__all__)
    assert hitl_typing.ContextT.__default__ is None
    assert hitl_typing.InputT.__default__ is hitl_typing.StateT
    assert hitl_typing.OutputT.__default__ is hitl_typing.StateT
    assert hitl_typing.StateT_co.__covariant__ and hitl_typing.StateT_contra.__contravariant__

    @dataclass
    class Holder(Generic[hitl_typing.StateT, hitl_typing.ContextT]):
        state: Any
        context: Any

    assert Holder[dict, str]({"a": 1}, "c").context == "c"
