"""An assistant with long-term memory across threads, and a human who approves what it keeps.

Run it: `python examples/memory_agent.py [--url sqlite:///memory-demo.db] [--answer no]`.

In a first conversation (thread `chat-1`) the user tells the assistant a few things; before it
stores a memory, the assistant asks a human to approve it (`interrupt()`), and the approved
memories go to the store under the user's namespace with semantic search. In a second
conversation (a new thread, `chat-2`) nothing of the first is in the state, yet the assistant
answers from the memories it recalls by meaning (`store.search(..., query=...)`). The same
database file holds the checkpoints and the store. No model is called: a toy embedding (word
hashes) stands in for one, and the "LLM" is a few string rules.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import re
from collections.abc import Sequence
from typing import Any

from typing_extensions import TypedDict

from hitl_async import END, START, Command, StateGraph, connect, interrupt
from hitl_async.runtime import Runtime
from hitl_async.store import BaseStore, connect_store

DIMS = 64


def embed(texts: Sequence[str]) -> list[list[float]]:
    """A stand-in for an embedding model: each word adds to a hashed direction."""
    vectors = []
    for text in texts:
        vec = [0.0] * DIMS
        for word in re.findall(r"[a-z]+", text.lower()):
            digest = hashlib.blake2b(word.rstrip("s").encode(), digest_size=8).digest()
            vec[int.from_bytes(digest, "big") % DIMS] += 1.0
        norm = math.sqrt(sum(x * x for x in vec)) or 1.0
        vectors.append([x / norm for x in vec])
    return vectors


class Chat(TypedDict):
    user_id: str
    message: str
    reply: str


def _facts(message: str) -> list[str]:
    """What the "model" would decide to remember: sentences stating a preference or a fact."""
    return [
        s.strip()
        for s in re.split(r"[.!?]", message)
        if re.match(r"\s*(i|my)\b", s.strip(), re.IGNORECASE)
    ]


async def remember(state: Chat, runtime: Runtime[None]) -> dict[str, Any]:
    """Propose memories and keep those a human approves."""
    store: BaseStore = runtime.store
    facts = _facts(state["message"])
    if not facts:
        return {"reply": "Noted."}
    answer = interrupt({"question": "Remember these about the user?", "memories": facts})
    if answer != "yes":
        return {"reply": "Okay, I will not remember that."}
    namespace = ("memories", state["user_id"])
    for i, fact in enumerate(facts):
        key = hashlib.sha1(fact.lower().encode()).hexdigest()[:12]
        await store.aput(namespace, key, {"text": fact, "source": f"message part {i}"})
    return {"reply": f"Got it, I will remember {len(facts)} thing(s)."}


async def answer(state: Chat, runtime: Runtime[None]) -> dict[str, Any]:
    """Answer a question from the memories that match it best."""
    found = await runtime.store.asearch(
        ("memories", state["user_id"]), query=state["message"], limit=2
    )
    if not found or found[0].score is None or found[0].score < 0.2:
        return {"reply": "I don't know that yet."}
    best = found[0].value["text"]
    return {"reply": f"From what you told me before: {best!r}."}


def route(state: Chat) -> str:
    return "answer" if state["message"].rstrip().endswith("?") else "remember"


def build(checkpointer: Any, store: BaseStore) -> Any:
    builder = StateGraph(Chat)
    builder.add_node("remember", remember)
    builder.add_node("answer", answer)
    builder.add_conditional_edges(START, route, ["remember", "answer"])
    builder.add_edge("remember", END)
    builder.add_edge("answer", END)
    return builder.compile(checkpointer=checkpointer, store=store)


async def main(url: str, human: str) -> None:
    saver = connect(url)
    store = connect_store(url, index={"embed": embed, "dims": DIMS, "fields": ["text"]})
    graph = build(saver, store)
    user = "user-42"
    try:
        first = {"configurable": {"thread_id": "chat-1"}}
        said = "I drink green tea every morning. My cat is called Miso."
        print(f"[chat-1] user: {said}")
        result = await graph.ainvoke({"user_id": user, "message": said, "reply": ""}, first)
        question = result["__interrupt__"][0].value
        print(f"[chat-1] assistant asks a human: {question['question']} {question['memories']}")
        print(f"[chat-1] human: {human}")
        result = await graph.ainvoke(Command(resume=human), first)
        print(f"[chat-1] assistant: {result['reply']}")

        second = {"configurable": {"thread_id": "chat-2"}}
        for asked in ("What do I drink in the morning?", "What is my cat called?"):
            print(f"[chat-2] user: {asked}")
            result = await graph.ainvoke({"user_id": user, "message": asked, "reply": ""}, second)
            print(f"[chat-2] assistant: {result['reply']}")
        kept = await store.asearch(("memories", user), limit=10)
        print(f"memories of {user}: {sorted(item.value['text'] for item in kept)}")
    finally:
        await store.aclose()
        await saver.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="sqlite:///memory-demo.db", help="checkpoints and store")
    parser.add_argument("--answer", default="yes", help="the human's answer to 'remember these?'")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.answer))
