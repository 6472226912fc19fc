"""`ValidationNode`, as in `langgraph.prebuilt` (deprecated there since 1.0, kept for older
extraction agents): checks the tool calls of the last AI message against their schemas without
running any tool, answering each with a `ToolMessage` of the validated arguments as JSON, or of
the error (marked `additional_kwargs={"is_error": True}`) so the model can be asked again.

Needs langchain-core (`pip install 'hitl-async[langchain]'`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool, create_schema_from_function
from pydantic import BaseModel, ValidationError
from pydantic.v1 import BaseModel as BaseModelV1
from pydantic.v1 import ValidationError as ValidationErrorV1

__all__ = ["ValidationNode"]

FormatError = Callable[[BaseException, ToolCall, Any], str]


def _default_format_error(error: BaseException, call: ToolCall, schema: Any) -> str:
    """LangGraph's wording: the error's repr and a request to fix it."""
    return f"{error!r}\n\nRespond after fixing all validation errors."


def _schema_of(item: BaseTool | type[BaseModel] | Callable[..., Any]) -> tuple[str, Any]:
    """(tool name, pydantic model) of a tool, a model class or a function."""
    if isinstance(item, BaseTool):
        schema = item.args_schema
        if schema is None:
            raise ValueError(f"Tool {item.name} does not have an args_schema defined.")
        if not (isinstance(schema, type) and issubclass(schema, (BaseModel, BaseModelV1))):
            raise ValueError(
                "Validation node only works with tools that have a pydantic BaseModel "
                f"args_schema. Got {item.name} with args_schema: {schema}."
            )
        return item.name, schema
    if isinstance(item, type) and issubclass(item, (BaseModel, BaseModelV1)):
        return item.__name__, item
    if callable(item):
        return item.__name__, create_schema_from_function("Validation", item)
    raise ValueError(
        "Unsupported input to ValidationNode. Expected BaseModel, tool or function. "
        f"Got: {type(item)}."
    )


class ValidationNode:
    """A node that validates (never runs) the tool calls of the last AI message: input a list
    of messages (output: a list of `ToolMessage`s) or a state with `messages` (output:
    `{"messages": [...]}`). `format_error(error, call, schema)` words a failed call's message."""

    def __init__(
        self,
        schemas: Sequence[BaseTool | type[BaseModel] | Callable[..., Any]],
        *,
        format_error: FormatError | None = None,
        name: str = "validation",
        tags: list[str] | None = None,
    ) -> None:
        warnings.warn(
            "ValidationNode is deprecated (as in LangGraph 1.0). Please use `create_agent` from "
            "`langchain.agents` with custom tool error handling.",
            DeprecationWarning,
            stacklevel=2,
        )
        self.name = name
        self.tags = tags
        self._format_error = format_error or _default_format_error
        self.schemas_by_name: dict[str, Any] = dict(_schema_of(s) for s in schemas)

    def _last_ai_message(self, input: Any) -> tuple[bool, AIMessage]:
        """(whether the input was a list, its last message, which must be an AI message)."""
        if isinstance(input, list):
            messages = input
        else:
            messages = input.get("messages", []) if isinstance(input, dict) else []
            if not messages:
                raise ValueError("No message found in input")
        message = messages[-1]
        if not isinstance(message, AIMessage):
            raise ValueError("Last message is not an AIMessage")
        return isinstance(input, list), message

    def _validate(self, call: ToolCall) -> ToolMessage:
        schema = self.schemas_by_name[call["name"]]
        call_id = str(call["id"])
        try:
            if issubclass(schema, BaseModel):
                content = schema.model_validate(call["args"]).model_dump_json()
            else:
                content = schema.validate(call["args"]).json()
        except (ValidationError, ValidationErrorV1) as error:
            return ToolMessage(
                content=self._format_error(error, call, schema),
                name=call["name"],
                tool_call_id=call_id,
                additional_kwargs={"is_error": True},
            )
        return ToolMessage(content=content, name=call["name"], tool_call_id=call_id)

    def invoke(self, input: Any, config: Any = None, **_: Any) -> Any:
        """The `ToolMessage`s of the last AI message's tool calls; see the class docstring."""
        as_list, message = self._last_ai_message(input)
        outputs = [self._validate(call) for call in message.tool_calls]
        return outputs if as_list else {"messages": outputs}

    async def ainvoke(self, input: Any, config: Any = None, **_: Any) -> Any:
        """As `invoke` (validation does no I/O)."""
        return self.invoke(input, config)

    def __repr__(self) -> str:
        return f"ValidationNode(schemas={list(self.schemas_by_name)})"
