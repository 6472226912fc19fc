"""`create_react_agent` and the human-review tool wrappers (`hitl_async.prebuilt`): LangGraph's
react-agent cases restated (prompts, tools, structured response, return_direct, hooks, v1/v2),
and tools that ask a human first, in both review schemas, on a durable store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from pydantic import BaseModel

from hitl_async import Command, InMemorySaver
from hitl_async.prebuilt import (
    HumanReviewError,
    create_react_agent,
    human_review,
    with_human_review,
)


class Scripted(GenericFakeChatModel):
    """Answers from a script, one reply per call, and records what it was given."""

    script: list[AIMessage] = []
    seen: list[list[BaseMessage]] = []
    structured: Any = None

    def bind_tools(self, tools: Any, **kwargs: Any) -> Scripted:
        return self

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:
        from langchain_core.runnables import RunnableLambda

        return RunnableLambda(lambda messages: self.structured)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        (chunk,) = self._stream(messages)
        message = AIMessage(content=chunk.message.content, id=chunk.message.id)
        message.tool_calls = self.script[min(len(self.seen), len(self.script)) - 1].tool_calls
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        self.seen.append(list(messages))
        reply = self.script[min(len(self.seen), len(self.script)) - 1]
        chunks = [
            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
            for i, c in enumerate(reply.tool_calls)
        ]
        yield ChatGenerationChunk(
            message=AIMessageChunk(content=reply.content, id=reply.id, tool_call_chunks=chunks)
        )


def call(name: str, args: dict[str, Any], id: str = "c1") -> dict[str, Any]:
    return {"name": name, "args": args, "id": id}


def model(*replies: AIMessage, structured: Any = None) -> Scripted:
    return Scripted(messages=iter(()), script=list(replies), seen=[], structured=structured)


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def ask(agent: Any, text: str = "hi", thread: str = "t", **config: Any) -> Any:
    return agent.invoke(
        {"messages": [("user", text)]}, {"configurable": {"thread_id": thread}, **config}
    )


# -- prompts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        None,
        "be brief",
        SystemMessage("be brief"),
        lambda s: [SystemMessage("be brief"), *s["messages"]],
    ],
    ids=["none", "str", "system message", "callable"],
)
def test_prompts_put_first_what_they_say(prompt: Any) -> None:
    m = model(AIMessage("hello", id="a1"))
    out = ask(create_react_agent(m, [], prompt=prompt))
    assert [type(x) for x in out["messages"]] == [HumanMessage, AIMessage]
    given = m.seen[0]
    if prompt is None:
        assert [x.content for x in given] == ["hi"]
    else:
        assert isinstance(given[0], SystemMessage) and given[0].content == "be brief"


# -- the tool loop ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_tools_run_and_the_answer_follows(version: str) -> None:
    m = model(
        AIMessage(
            "",
            id="a1",
            tool_calls=[
                call("weather", {"city": "Oslo"}, "c1"),
                call("weather", {"city": "Rome"}, "c2"),
            ],
        ),
        AIMessage("Oslo and Rome are sunny.", id="a2"),
    )
    agent = create_react_agent(m, [weather], checkpointer=InMemorySaver(), version=version)
    out = ask(agent)
    kinds = [type(x).__name__ for x in out["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "ToolMessage", "AIMessage"]
    assert [x.content for x in out["messages"][2:4]] == ["sunny in Oslo", "sunny in Rome"]
    assert out["messages"][-1].content == "Oslo and Rome are sunny."


def test_interrupt_before_tools_pauses_and_resume_runs_them() -> None:
    m = model(
        AIMessage("", id="a1", tool_calls=[call("weather", {"city": "Oslo"})]),
        AIMessage("ok", id="a2"),
    )
    agent = create_react_agent(
        m, [weather], checkpointer=InMemorySaver(), interrupt_before=["tools"]
    )
    config = {"configurable": {"thread_id": "ib"}}
    agent.invoke({"messages": [("user", "hi")]}, config)
    assert agent.get_state(config).next == ("tools",)
    out = agent.invoke(None, config)
    assert out["messages"][-1].content == "ok"


def test_return_direct_ends_after_the_tool() -> None:
    @tool(return_direct=True)
    def final(x: str) -> str:
        """Answers directly."""
        return f"final {x}"

    m = model(AIMessage("", id="a1", tool_calls=[call("final", {"x": "y"})]))
    out = ask(create_react_agent(m, [final]))
    assert out["messages"][-1].content == "final y" and len(m.seen) == 1


def test_structured_response() -> None:
    class Weather(BaseModel):
        city: str

    m = model(AIMessage("It is sunny", id="a1"), structured=Weather(city="Oslo"))
    out = ask(create_react_agent(m, [], response_format=Weather))
    assert out["structured_response"] == Weather(city="Oslo")


def test_pre_and_post_model_hooks() -> None:
    def pre(state: Any) -> dict[str, Any]:
        return {"llm_input_messages": [SystemMessage("trimmed"), state["messages"][-1]]}

    def post(state: Any) -> dict[str, Any]:
        return {
            "messages": [
                AIMessage(state["messages"][-1].content.upper(), id=state["messages"][-1].id)
            ]
        }

    m = model(AIMessage("quiet answer", id="a1"))
    out = ask(create_react_agent(m, [], pre_model_hook=pre, post_model_hook=post))
    assert [x.content for x in m.seen[0]] == ["trimmed", "hi"]
    assert out["messages"][-1].content == "QUIET ANSWER"
    assert "llm_input_messages" not in out


def test_not_enough_steps_left_ends_politely() -> None:
    m = model(AIMessage("", id="a1", tool_calls=[call("weather", {"city": "Oslo"})]))
    out = ask(create_react_agent(m, [weather]), recursion_limit=1)
    assert out["messages"][-1].content == "Sorry, need more steps to process this request."


def test_a_bad_state_schema_and_version_are_refused() -> None:
    from typing_extensions import TypedDict

    class NoSteps(TypedDict):
        messages: list[Any]

    with pytest.raises(ValueError, match="remaining_steps"):
        create_react_agent(model(), [], state_schema=NoSteps)
    with pytest.raises(ValueError, match="Invalid version v3"):
        create_react_agent(model(), [], version="v3")  # type: ignore[arg-type]


# -- human review of tool calls -------------------------------------------------------------------

ran: list[dict[str, Any]] = []


@tool
def send_email(to: str, body: str) -> str:
    """Sends an email."""
    ran.append({"to": to, "body": body})
    return f"sent to {to}"


def reviewed_agent(saver: Any, **review: Any) -> Any:
    m = model(
        AIMessage("", id="a1", tool_calls=[call("send_email", {"to": "a@x", "body": "hi"})]),
        AIMessage("done", id="a2"),
    )
    return create_react_agent(m, with_human_review([send_email], **review), checkpointer=saver)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("decision", "sent", "last_tool"),
    [
        ({"type": "approve"}, [{"to": "a@x", "body": "hi"}], ("sent to a@x", "success")),
        (
            {
                "type": "edit",
                "edited_action": {"name": "send_email", "args": {"to": "b@x", "body": "hey"}},
            },
            [{"to": "b@x", "body": "hey"}],
            ("sent to b@x", "success"),
        ),
        ({"type": "reject", "message": "not now"}, [], ("not now", "error")),
    ],
    ids=["approve", "edit", "reject"],
)
async def test_hitl_schema_approve_edit_reject(
    saver: Any, decision: dict[str, Any], sent: list[Any], last_tool: tuple[str, str]
) -> None:
    ran.clear()
    agent = reviewed_agent(saver)
    config = {"configurable": {"thread_id": f"review-{decision['type']}"}}
    paused = await agent.ainvoke({"messages": [("user", "mail a")]}, config)
    request = paused["__interrupt__"][0].value
    assert request["action_requests"][0]["name"] == "send_email"
    assert request["action_requests"][0]["args"] == {"to": "a@x", "body": "hi"}
    assert "Tool execution requires approval" in request["action_requests"][0]["description"]
    assert request["review_configs"] == [
        {"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject"]}
    ]
    assert ran == []
    done = await agent.ainvoke(Command(resume={"decisions": [decision]}), config)
    assert ran == sent
    tool_message = next(m for m in done["messages"] if isinstance(m, ToolMessage))
    assert (tool_message.content, tool_message.status) == last_tool
    assert tool_message.tool_call_id == "c1"


def test_a_decision_that_is_not_allowed_is_a_clear_error() -> None:
    ran.clear()
    agent = reviewed_agent(
        InMemorySaver(), interrupt_on={"send_email": {"allowed_decisions": ["approve", "reject"]}}
    )
    config = {"configurable": {"thread_id": "not-allowed"}}
    agent.invoke({"messages": [("user", "mail a")]}, config)
    edit = {
        "type": "edit",
        "edited_action": {"name": "send_email", "args": {"to": "z", "body": ""}},
    }
    with pytest.raises(
        HumanReviewError,
        match=r"'edit' is not allowed; allowed decisions are \['approve', 'reject'\]",
    ):
        agent.invoke(Command(resume={"decisions": [edit]}), config)
    assert ran == []


def test_agent_inbox_schema() -> None:
    ran.clear()
    reviewed = human_review(send_email, schema="agent-inbox", allowed_decisions=["approve", "edit"])
    m = model(
        AIMessage("", id="a1", tool_calls=[call("send_email", {"to": "a@x", "body": "hi"})]),
        AIMessage("done", id="a2"),
    )
    agent = create_react_agent(m, [reviewed], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "inbox"}}
    paused = agent.invoke({"messages": [("user", "mail a")]}, config)
    (request,) = paused["__interrupt__"][0].value
    assert request["action_request"] == {
        "action": "send_email",
        "args": {"to": "a@x", "body": "hi"},
    }
    assert request["config"] == {
        "allow_accept": True,
        "allow_edit": True,
        "allow_respond": False,
        "allow_ignore": False,
    }
    answer = [
        {"type": "edit", "args": {"action": "send_email", "args": {"to": "c@x", "body": "yo"}}}
    ]
    agent.invoke(Command(resume=answer), config)
    assert ran == [{"to": "c@x", "body": "yo"}]


def test_tools_not_named_in_interrupt_on_are_not_reviewed() -> None:
    tools = with_human_review([send_email, weather], interrupt_on={"send_email": True})
    assert tools[1] is weather and tools[0] is not send_email
    assert tools[0].name == "send_email" and set(tools[0].tool_call_schema.model_fields) == {
        "to",
        "body",
    }


def test_an_unanswered_tool_call_in_the_history_names_its_troubleshooting_page() -> None:
    agent = create_react_agent(model(AIMessage("hi", id="a9")), [])
    dangling = AIMessage("", id="a1", tool_calls=[{"name": "t", "args": {}, "id": "c1"}])
    with pytest.raises(ValueError, match="do not have a corresponding ToolMessage") as caught:
        agent.invoke({"messages": [HumanMessage("x"), dangling]})
    assert str(caught.value).endswith("langgraph/errors/INVALID_CHAT_HISTORY")
