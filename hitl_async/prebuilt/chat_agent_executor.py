"""`create_react_agent`, as in `langgraph.prebuilt`: a model that calls tools in a loop.

The graph is LangGraph's: `agent` (the model) -> `tools` (a `ToolNode`) -> `agent` ... -> END,
with the optional `pre_model_hook`, `post_model_hook` and `generate_structured_response` nodes,
so `interrupt_before=["tools"]`, stream events and node names port unchanged. `version="v2"`
(the default) sends each tool call to `tools` as its own task; `"v1"` runs them in one.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, NotRequired, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableLambda, RunnableSequence
from langchain_core.tools import BaseTool
from pydantic import BaseModel
from typing_extensions import TypedDict

from hitl_async.constants import END
from hitl_async.errors import ErrorCode, create_error_message
from hitl_async.graph.message import add_messages
from hitl_async.graph.state import StateGraph
from hitl_async.managed import RemainingSteps
from hitl_async.prebuilt.tool_node import ToolNode
from hitl_async.types import Send

__all__ = [
    "AgentState",
    "AgentStatePydantic",
    "AgentStateWithStructuredResponse",
    "AgentStateWithStructuredResponsePydantic",
    "create_react_agent",
    "create_tool_calling_executor",
]

PROMPT_RUNNABLE_NAME = "Prompt"
_NEED_MORE_STEPS = "Sorry, need more steps to process this request."


class AgentState(TypedDict):
    """The state of the agent: its messages (and, computed per step, `remaining_steps`)."""

    messages: Annotated[Sequence[BaseMessage], add_messages]
    remaining_steps: NotRequired[RemainingSteps]


class AgentStatePydantic(BaseModel):
    """`AgentState` as a pydantic model."""

    messages: Annotated[Sequence[BaseMessage], add_messages]
    remaining_steps: RemainingSteps = 25


class AgentStateWithStructuredResponse(AgentState):
    """`AgentState` plus the `structured_response` of `response_format`."""

    structured_response: NotRequired[Any]


class AgentStateWithStructuredResponsePydantic(AgentStatePydantic):
    """`AgentStatePydantic` plus the `structured_response` of `response_format`."""

    structured_response: Any = None


def _get(state: Any, key: str, default: Any = None) -> Any:
    return state.get(key, default) if isinstance(state, dict) else getattr(state, key, default)


def _prompt_runnable(prompt: Any) -> Runnable[Any, Any]:
    if prompt is None:
        return RunnableLambda(lambda state: _get(state, "messages"), name=PROMPT_RUNNABLE_NAME)
    if isinstance(prompt, str):
        system = SystemMessage(content=prompt)
        return RunnableLambda(
            lambda state: [system, *_get(state, "messages")], name=PROMPT_RUNNABLE_NAME
        )
    if isinstance(prompt, SystemMessage):
        return RunnableLambda(
            lambda state: [prompt, *_get(state, "messages")], name=PROMPT_RUNNABLE_NAME
        )
    if isinstance(prompt, Runnable):
        return prompt
    if callable(prompt):
        return RunnableLambda(prompt, name=PROMPT_RUNNABLE_NAME)
    raise ValueError(f"Got unexpected type for `prompt`: {type(prompt)}")


def _inner_model(model: Any) -> Any:
    if isinstance(model, RunnableSequence):
        model = next(
            (s for s in model.steps if isinstance(s, (RunnableBinding, BaseChatModel))), model
        )
    return model


def _should_bind_tools(model: Any, tools: Sequence[BaseTool], builtin: int) -> bool:
    model = _inner_model(model)
    if not isinstance(model, RunnableBinding) or "tools" not in model.kwargs:
        return True
    bound = model.kwargs["tools"]
    if len(tools) != len(bound) - builtin:
        raise ValueError(
            "Number of tools in the model.bind_tools() and tools passed to create_react_agent "
            f"must match Got {len(tools)} tools, expected {len(bound) - builtin}"
        )
    names = set()
    for spec in bound:
        if spec.get("type") == "function":
            names.add(spec["function"]["name"])
        elif spec.get("name"):
            names.add(spec["name"])
    missing = {t.name for t in tools} - names
    if missing:
        raise ValueError(f"Missing tools '{missing}' in the model.bind_tools()")
    return False


def _chat_model(model: Any) -> BaseChatModel:
    model = _inner_model(model)
    if isinstance(model, RunnableBinding):
        model = model.bound
    if not isinstance(model, BaseChatModel):
        raise TypeError(
            "Expected `model` to be a ChatModel or RunnableBinding (e.g. model.bind_tools(...)), "
            f"got {type(model)}"
        )
    return model


def _check_history(messages: Sequence[BaseMessage]) -> None:
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    pending = [
        call
        for m in messages
        if isinstance(m, AIMessage)
        for call in m.tool_calls
        if call["id"] not in answered
    ]
    if pending:
        message = (
            "Found AIMessages with tool_calls that do not have a corresponding ToolMessage. "
            f"Here are the first few of those tool calls: {pending[:3]}.\n\nEvery tool call (LLM "
            "requesting to call a tool) in the message history MUST have a corresponding "
            "ToolMessage (result of a tool invocation to return to the LLM) - this is required "
            "by most LLM providers."
        )
        raise ValueError(
            create_error_message(message=message, error_code=ErrorCode.INVALID_CHAT_HISTORY)
        )


def _remaining_steps(state: Any) -> int | None:
    """The state's `remaining_steps` (a managed key the engine fills in for each step), or,
    for a state without it, the supersteps the run may still take after this one."""
    given = _get(state, "remaining_steps")
    if given is not None:
        return int(given)
    from hitl_async._runtime import current_scratchpad

    try:
        run = current_scratchpad("create_react_agent").run
    except RuntimeError:
        return None
    limit, used = getattr(run, "limit", None), getattr(run, "steps_run", None)
    if limit is None or used is None:
        return None
    return int(limit) - int(used)


def create_react_agent(
    model: Any,
    tools: Sequence[BaseTool | Callable[..., Any] | dict[str, Any]] | ToolNode,
    *,
    prompt: Any = None,
    response_format: Any = None,
    pre_model_hook: Any = None,
    post_model_hook: Any = None,
    state_schema: Any = None,
    context_schema: Any = None,
    checkpointer: Any = None,
    store: Any = None,
    interrupt_before: list[str] | None = None,
    interrupt_after: list[str] | None = None,
    debug: bool = False,
    version: Literal["v1", "v2"] = "v2",
    name: str | None = None,
    **deprecated: Any,
) -> Any:
    """A compiled graph that calls `model` and runs the tools it asks for until it answers.

    `model`: a chat model (bound to the tools unless already), or a callable `(state, runtime)
    -> model` chosen per call. `prompt`: a str or SystemMessage put first, a callable or
    Runnable mapping the state to the model's input. `response_format`: a schema (or `(prompt,
    schema)`) for a final `structured_response`. `pre_model_hook` / `post_model_hook`: nodes
    run before / after the model (`llm_input_messages` from the pre hook is the model's input).
    `state_schema` must have `messages` and `remaining_steps`. The rest is `compile()`'s.
    `config_schema` is the deprecated name of `context_schema`.
    """
    if "config_schema" in deprecated:
        import warnings

        warnings.warn(
            "`config_schema` is deprecated; use `context_schema`",
            DeprecationWarning,
            stacklevel=2,
        )
        context_schema = context_schema or deprecated.pop("config_schema")
    if deprecated:
        raise TypeError(f"create_react_agent() got unexpected keyword arguments: {deprecated}")
    if version not in ("v1", "v2"):
        raise ValueError(f"Invalid version {version}. Supported versions are 'v1' and 'v2'.")
    if state_schema is not None:
        required = {"messages", "remaining_steps"} | (
            {"structured_response"} if response_format is not None else set()
        )
        keys = set(typing.get_type_hints(state_schema))
        if missing := required - keys:
            raise ValueError(f"Missing required key(s) {missing} in state_schema")
    else:
        state_schema = (
            AgentStateWithStructuredResponse if response_format is not None else AgentState
        )

    builtin: list[dict[str, Any]] = []
    if isinstance(tools, ToolNode):
        tool_node = tools
    else:
        builtin = [t for t in tools if isinstance(t, dict)]
        tool_node = ToolNode([t for t in tools if not isinstance(t, dict)])
    tool_classes = list(tool_node.tools_by_name.values())
    dynamic = not isinstance(model, (str, Runnable)) and callable(model)
    if isinstance(model, str):
        raise ValueError(
            "model as a '<provider>:<model>' string needs langchain's init_chat_model; pass a "
            "chat model instance"
        )
    static: Any = None
    if not dynamic:
        if _should_bind_tools(model, tool_classes, len(builtin)) and (tool_classes or builtin):
            model = cast(BaseChatModel, model).bind_tools([*tool_classes, *builtin])
        static = _prompt_runnable(prompt) | model
    return_direct = {t.name for t in tool_classes if t.return_direct}

    def resolve(state: Any, runtime: Any) -> Any:
        return _prompt_runnable(prompt) | model(state, runtime) if dynamic else static

    def model_input(state: Any) -> Any:
        messages = (
            _get(state, "llm_input_messages") if pre_model_hook is not None else None
        ) or _get(state, "messages")
        if messages is None:
            raise ValueError(f"Expected input to call_model to have 'messages' key: {state}")
        _check_history(messages)
        if isinstance(state, BaseModel):
            state.messages = messages  # type: ignore[attr-defined]
        else:
            state = {**state, "messages": messages}
        return state

    def finish(state: Any, response: Any) -> dict[str, Any]:
        response.name = name
        has_calls = isinstance(response, AIMessage) and bool(response.tool_calls)
        all_direct = isinstance(response, AIMessage) and all(
            c["name"] in return_direct for c in response.tool_calls
        )
        remaining = _remaining_steps(state)
        if remaining is not None and (
            (remaining < 1 and all_direct) or (remaining < 2 and has_calls)
        ):
            return {"messages": [AIMessage(id=response.id, content=_NEED_MORE_STEPS)]}
        return {"messages": [response]}

    async def agent(state: Any, config: dict[str, Any], runtime: Any) -> dict[str, Any]:
        chosen = resolve(state, runtime)
        if inspect.isawaitable(chosen):
            chosen = _prompt_runnable(prompt) | await chosen
        return finish(state, await chosen.ainvoke(model_input(state), cast(Any, config)))

    async def generate_structured_response(
        state: Any, config: dict[str, Any], runtime: Any
    ) -> dict[str, Any]:
        messages = list(_get(state, "messages"))
        schema = response_format
        if isinstance(response_format, tuple):
            system, schema = response_format
            messages = [SystemMessage(content=system), *messages]
        structured = _chat_model(resolve(state, runtime)).with_structured_output(schema)
        return {"structured_response": await structured.ainvoke(messages, cast(Any, config))}

    full_schema = state_schema
    if pre_model_hook is not None:  # the pre hook's llm_input_messages: a key, not an output
        full_schema = _with_model_input(state_schema)
    workflow = StateGraph(full_schema, context_schema, output_schema=state_schema)
    workflow.add_node("agent", agent)
    if tool_classes:  # nodes in LangGraph's order (its picture lists them so)
        workflow.add_node("tools", tool_node)
    entry = "agent"
    if pre_model_hook is not None:
        workflow.add_node("pre_model_hook", pre_model_hook)
        workflow.add_edge("pre_model_hook", "agent")
        entry = "pre_model_hook"
    workflow.set_entry_point(entry)
    if post_model_hook is not None:
        workflow.add_node("post_model_hook", post_model_hook)
        workflow.add_edge("agent", "post_model_hook")
    if response_format is not None:
        workflow.add_node("generate_structured_response", generate_structured_response)
    after_model = "post_model_hook" if post_model_hook is not None else "agent"

    if not tool_classes:
        if response_format is not None:
            workflow.add_edge(after_model, "generate_structured_response")
        return workflow.compile(
            checkpointer=checkpointer,
            store=store,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            debug=debug,
            name=name,
        )

    final = "generate_structured_response" if response_format is not None else END

    def sends(state: Any, calls: Sequence[Any]) -> list[Send]:
        return [
            Send("tools", {"__type": "tool_call_with_context", "tool_call": c, "state": state})
            for c in calls
        ]

    def should_continue(state: Any) -> str | list[Send]:
        last = _get(state, "messages")[-1]
        if not isinstance(last, AIMessage) or not last.tool_calls:
            return "post_model_hook" if post_model_hook is not None else final
        if version == "v1":
            return "tools"
        if post_model_hook is not None:
            return "post_model_hook"
        return sends(state, last.tool_calls)

    agent_paths = ["post_model_hook"] if post_model_hook is not None else ["tools", final]
    workflow.add_conditional_edges("agent", should_continue, path_map=agent_paths)

    if post_model_hook is not None:

        def after_post_hook(state: Any) -> str | list[Send]:
            messages = _get(state, "messages")
            answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
            last_ai = next(m for m in reversed(messages) if isinstance(m, AIMessage))
            pending = [c for c in last_ai.tool_calls if c["id"] not in answered]
            if pending:
                return sends(state, pending)
            if isinstance(messages[-1], ToolMessage):
                return entry
            return final

        workflow.add_conditional_edges(
            "post_model_hook", after_post_hook, path_map=[entry, "tools", final]
        )

    if return_direct:

        def after_tools(state: Any) -> str:
            last: Any = None
            for last in reversed(_get(state, "messages")):
                if not isinstance(last, ToolMessage):
                    break
                if last.name in return_direct:
                    return END
            if isinstance(last, AIMessage) and any(
                c["name"] in return_direct for c in last.tool_calls
            ):
                return END
            return entry

        workflow.add_conditional_edges("tools", after_tools, path_map=[entry, END])
    else:
        workflow.add_edge("tools", entry)
    if response_format is not None:
        workflow.add_edge("generate_structured_response", END)
    return workflow.compile(
        checkpointer=checkpointer,
        store=store,
        interrupt_before=interrupt_before,
        interrupt_after=interrupt_after,
        debug=debug,
        name=name,
    )


create_tool_calling_executor = create_react_agent


def _with_model_input(state_schema: Any) -> Any:
    """`state_schema` plus an `llm_input_messages` key (what `pre_model_hook` may return)."""
    if isinstance(state_schema, type) and issubclass(state_schema, BaseModel):
        from pydantic import create_model

        return create_model(
            f"{state_schema.__name__}WithModelInput",
            __base__=state_schema,
            llm_input_messages=(list[AnyMessage] | None, None),
        )
    fields = dict(typing.get_type_hints(state_schema, include_extras=True))
    fields["llm_input_messages"] = NotRequired[list[AnyMessage]]
    make: Any = TypedDict
    return make(f"{state_schema.__name__}WithModelInput", fields)
