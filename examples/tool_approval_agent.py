"""A LangGraph tool-approval agent, ported to hitl-async by renaming its imports.

A scripted chat model (a GenericFakeChatModel subclass: no API key, same answers every run)
asks to refund an order. Two agents handle it:

1. A hand-built graph on `MessagesState`: agent -> review (a human approves, edits or rejects
   the tool call through `interrupt()` and `Command`) -> tools -> agent.
2. `create_react_agent(..., interrupt_before=["tools"])`: the run stops before the tools step
   and continues when resumed.

Everything streams with `stream_mode=["messages", "updates"]`: the model's tokens as they come,
then each node's update. Run it in memory, or on SQLite across two processes:

    python examples/tool_approval_agent.py memory
    python examples/tool_approval_agent.py pause  --db /tmp/agent.sqlite   # pauses, exits
    python examples/tool_approval_agent.py resume --db /tmp/agent.sqlite   # another process

On LangGraph 1.2.22 the same program (the imports block below renamed back to `langgraph`)
prints exactly the same lines: `tests/test_examples_agent.py` checks it against
`examples/tool_approval_agent.golden.txt`, recorded on LangGraph.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Literal

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.tools import tool

# -- the only lines that differ from the LangGraph program ------------------------------------
from hitl_async.checkpoint.memory import InMemorySaver
from hitl_async.checkpoint.sqlite import SqliteSaver
from hitl_async.graph import END, START, MessagesState, StateGraph
from hitl_async.prebuilt import ToolNode, create_react_agent
from hitl_async.types import Command, interrupt

# -----------------------------------------------------------------------------------------------


@tool
def refund(order_id: str, amount: float) -> str:
    """Refund `amount` dollars on order `order_id`."""
    return f"Refunded ${amount:.2f} on order {order_id}."


class ScriptedChatModel(GenericFakeChatModel):
    """Asks for a refund of order A-17, then reports what the tool (or the reviewer) said.

    Its answer depends only on the conversation, so a process that resumes a thread gets the
    same answer as the one that started it.
    """

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        turn = sum(isinstance(m, AIMessage) for m in messages) + 1
        if isinstance(last, ToolMessage):
            verdict = "Done" if last.status != "error" else "Not done"
            return AIMessage(f"{verdict}: {last.content}", id=f"ai-{turn}")
        call = {"name": "refund", "args": {"order_id": "A-17", "amount": 42.5}, "id": "call-1"}
        return AIMessage("Let me refund that order.", id=f"ai-{turn}", tool_calls=[call])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Any:
        reply = self._reply(messages)
        words = str(reply.content).split(" ")
        for index, word in enumerate(words):
            text = word if index == 0 else f" {word}"
            yield self._chunk(AIMessageChunk(content=text, id=reply.id), run_manager)
        if reply.tool_calls:
            chunks = [
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                for i, c in enumerate(reply.tool_calls)
            ]
            message = AIMessageChunk(content="", id=reply.id, tool_call_chunks=chunks)
            yield self._chunk(message, run_manager)

    @staticmethod
    def _chunk(message: AIMessageChunk, run_manager: Any) -> ChatGenerationChunk:
        chunk = ChatGenerationChunk(message=message)
        if run_manager is not None:
            run_manager.on_llm_new_token(str(message.content), chunk=chunk)
        return chunk


def new_model() -> ScriptedChatModel:
    return ScriptedChatModel(messages=iter(()))


# -- 1. a hand-built graph with a review node ---------------------------------------------------


def build_review_graph(checkpointer: Any) -> Any:
    model = new_model()

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: MessagesState) -> Literal["review", "__end__"]:
        last = state["messages"][-1]
        return "review" if isinstance(last, AIMessage) and last.tool_calls else END

    def review(state: MessagesState) -> Command[Literal["tools", "agent"]]:
        last = state["messages"][-1]
        call = last.tool_calls[0]
        decision = interrupt({"question": "Run this tool call?", "tool_call": call})
        if decision["action"] == "approve":
            return Command(goto="tools")
        if decision["action"] == "edit":
            edited = {**call, "args": decision["args"]}
            fixed = AIMessage(content=last.content, id=last.id, tool_calls=[edited])
            return Command(goto="tools", update={"messages": [fixed]})
        answer = ToolMessage(
            content=f"The reviewer rejected the refund: {decision['reason']}",
            tool_call_id=call["id"],
            name=call["name"],
            status="error",
        )
        return Command(goto="agent", update={"messages": [answer]})

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("review", review)
    builder.add_node("tools", ToolNode([refund]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["review", END])
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def build_react_agent(checkpointer: Any) -> Any:
    return create_react_agent(
        new_model(), [refund], checkpointer=checkpointer, interrupt_before=["tools"]
    )


# -- printing -----------------------------------------------------------------------------------


def show(message: Any) -> str:
    """A message without its ids (they are random), but with everything else that matters."""
    parts = [repr(message.content)]
    for call in getattr(message, "tool_calls", None) or ():
        parts.append(f"calls {call['name']}({json.dumps(call['args'], sort_keys=True)})")
    for chunk in getattr(message, "tool_call_chunks", None) or ():
        parts.append(f"call chunk {chunk['name']}({chunk['args']})")
    if isinstance(message, ToolMessage):
        parts.append(f"for {message.tool_call_id} [{message.status}]")
    return f"{type(message).__name__} {' '.join(parts)}"


def stream(graph: Any, value: Any, config: dict[str, Any]) -> None:
    for mode, chunk in graph.stream(value, config, stream_mode=["messages", "updates"]):
        if mode == "messages":
            message, meta = chunk
            if message.content or getattr(message, "tool_call_chunks", None):
                step, node = meta["langgraph_step"], meta["langgraph_node"]
                print(f"  token  step {step} {node}: {show(message)}")
            continue
        for node, update in chunk.items():
            if node == "__interrupt__":
                for pending in update:
                    print(f"  paused: {json.dumps(pending.value, sort_keys=True)}")
                if not update:
                    print("  paused before the next step")
            elif update is None:
                print(f"  update {node}: (no state change)")
            else:
                for message in update.get("messages", []):
                    print(f"  update {node}: {show(message)}")


def start(graph: Any, thread: str) -> None:
    print(f"== {thread}: start")
    config = {"configurable": {"thread_id": thread}}
    stream(graph, {"messages": [("user", "Please refund order A-17.")]}, config)
    print(f"   next: {list(graph.get_state(config).next)}")


def resume(graph: Any, thread: str, answer: Any) -> None:
    print(f"== {thread}: resume with {json.dumps(answer, sort_keys=True)}")
    config = {"configurable": {"thread_id": thread}}
    stream(graph, Command(resume=answer) if answer is not None else None, config)
    final = graph.get_state(config)
    print(f"   next: {list(final.next)}; {len(final.values['messages'])} messages")
    print(f"   last: {show(final.values['messages'][-1])}")


DECISIONS: dict[str, Any] = {
    "review-approve": {"action": "approve"},
    "review-edit": {"action": "edit", "args": {"order_id": "A-17", "amount": 40.0}},
    "review-reject": {"action": "reject", "reason": "over the daily limit"},
}


def pause_all(checkpointer: Any) -> None:
    review_graph, react = build_review_graph(checkpointer), build_react_agent(checkpointer)
    for thread in DECISIONS:
        start(review_graph, thread)
    start(react, "react")


def resume_all(checkpointer: Any) -> None:
    review_graph, react = build_review_graph(checkpointer), build_react_agent(checkpointer)
    for thread, decision in DECISIONS.items():
        resume(review_graph, thread, decision)
    resume(react, "react", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("where", choices=["memory", "pause", "resume"])
    parser.add_argument("--db", default="tool-approval-agent.sqlite", help="SQLite file")
    args = parser.parse_args()
    if args.where == "memory":
        checkpointer = InMemorySaver()
        pause_all(checkpointer)
        resume_all(checkpointer)
        return
    with SqliteSaver.from_conn_string(args.db) as checkpointer:
        if args.where == "pause":
            pause_all(checkpointer)
        else:
            resume_all(checkpointer)


if __name__ == "__main__":
    main()
