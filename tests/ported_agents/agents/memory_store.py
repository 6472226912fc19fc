"""Ported agent 5: memory across threads. A chatbot remembers facts per user in an
`InMemoryStore`, reached through `runtime.store` (with the user id from a `context_schema`)
in one node and `get_store()` in another; a second thread of the same user sees them."""

from dataclasses import dataclass

from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_store
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.memory import InMemoryStore
from ported_support import ScriptedChatModel, ai


@dataclass
class Context:
    user_id: str


def build(model, store):
    def call_model(state: MessagesState, runtime: Runtime[Context]):
        namespace = ("memories", runtime.context.user_id)
        memories = runtime.store.search(namespace)
        known = ", ".join(m.value["data"] for m in memories) or "nothing"
        last = state["messages"][-1].content
        if last.lower().startswith("remember:"):
            runtime.store.put(
                namespace, f"fact-{len(memories)}", {"data": last[len("remember:") :].strip()}
            )
        reply = model.invoke(state["messages"])
        return {"messages": [AIMessage(f"[I know: {known}] {reply.content}")]}

    def count_turns(state: MessagesState):
        store = get_store()
        item = store.get(("stats",), "turns")
        turns = (item.value["n"] if item else 0) + 1
        store.put(("stats",), "turns", {"n": turns})
        return {}

    builder = StateGraph(MessagesState, context_schema=Context)
    builder.add_node(call_model)
    builder.add_node(count_turns)
    builder.add_edge(START, "call_model")
    builder.add_edge("call_model", "count_turns")
    return builder.compile(checkpointer=InMemorySaver(), store=store)


def items(store, namespace):
    return [[list(i.namespace), i.key, i.value] for i in store.search(namespace)]


def main(rec):
    store = InMemoryStore()
    model = ScriptedChatModel(
        messages=iter(
            [
                ai("Noted."),
                ai("Noted again."),
                ai("You are Bob and like tea."),
                ai("Hello stranger."),
            ]
        )
    )
    graph = build(model, store)
    bob = Context(user_id="bob")
    rec.add(
        "t1.turn1",
        graph.invoke(
            {"messages": [("user", "remember: my name is Bob")]},
            {"configurable": {"thread_id": "1"}},
            context=bob,
        ),
    )
    rec.stream(
        "t1.turn2",
        graph.stream(
            {"messages": [("user", "remember: I like tea")]},
            {"configurable": {"thread_id": "1"}},
            context=bob,
            stream_mode="updates",
        ),
    )
    rec.stream(
        "t2.messages",
        graph.stream(
            {"messages": [("user", "who am I?")]},
            {"configurable": {"thread_id": "2"}},
            context=bob,
            stream_mode=["updates", "messages"],
        ),
    )
    rec.add(
        "t3.other-user",
        graph.invoke(
            {"messages": [("user", "who am I?")]},
            {"configurable": {"thread_id": "3"}},
            context=Context(user_id="eve"),
        ),
    )
    rec.add("store.bob", items(store, ("memories", "bob")))
    rec.add("store.eve", items(store, ("memories", "eve")))
    rec.add("store.stats", items(store, ("stats",)))
    rec.add("store.namespaces", [list(n) for n in store.list_namespaces()])
    rec.add("state.t2", graph.get_state({"configurable": {"thread_id": "2"}}))
