"""Ported agent 17: an async functional-API workflow. The `@entrypoint` (checkpointer, store,
`context_schema`; `previous`, `runtime` and `writer` injected) calls a flaky `@task` retried by
its `RetryPolicy`, a task that calls another task, and two review tasks asking a human with
`interrupt()` inside the task, one after the other or together with `asyncio.gather` (README
difference "`interrupt()` in several `@task` calls": compared as the questions asked).
`entrypoint.final` returns one value and saves another for the next call, read as `previous`."""

import asyncio
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint, task
from langgraph.runtime import Runtime
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command, RetryPolicy, StreamWriter, interrupt


@dataclass
class Ctx:
    author: str
    together: bool = False


CALLS = {"fetch": 0}


@task(retry_policy=RetryPolicy(max_attempts=3, initial_interval=0.01, retry_on=ConnectionError))
async def fetch_facts(topic: str) -> list[str]:
    CALLS["fetch"] += 1
    if CALLS["fetch"] == 1:
        raise ConnectionError("flaky source")
    return [f"{topic} fact {n}" for n in (1, 2)]


@task
async def outline(facts: list[str]) -> str:
    return " / ".join(facts)


@task
async def draft(topic: str, facts: list[str]) -> str:
    shape = await outline(facts)
    return f"{topic.title()}: {shape}"


@task
async def review(text: str, reviewer: str) -> dict:
    verdict = interrupt({"reviewer": reviewer, "text": text})
    return {"reviewer": reviewer, "verdict": verdict}


def build():
    store = InMemoryStore()

    @entrypoint(checkpointer=InMemorySaver(), store=store, context_schema=Ctx)
    async def publish(
        topic: str, *, previous: Any = None, runtime: Runtime[Ctx], writer: StreamWriter
    ) -> entrypoint.final[dict, dict]:
        facts = await fetch_facts(topic)
        text = await draft(topic, facts)
        writer({"drafted": text})
        if runtime.context.together:
            reviews = await asyncio.gather(review(text, "legal"), review(text, "editor"))
        else:
            reviews = [await review(text, "legal"), await review(text, "editor")]
        approved = all(r["verdict"] == "ok" for r in reviews)
        count = (previous or {}).get("published", 0) + approved
        if approved:
            runtime.store.put((runtime.context.author,), topic, {"text": text})
        result = {"text": text, "reviews": reviews, "approved": approved}
        return entrypoint.final(value=result, save={"published": count, "last": topic})

    return publish, store


async def collect(rec, label, stream, *, unordered=False):
    rec.stream(label, [chunk async for chunk in stream], unordered=unordered)


async def amain(rec):
    publish, store = build()
    cfg = {"configurable": {"thread_id": "news"}}
    ada = Ctx(author="ada")
    await collect(
        rec,
        "first.updates",
        publish.astream("otters", cfg, context=ada, stream_mode=["updates", "custom"]),
    )
    rec.add("calls", dict(CALLS))
    paused = await publish.aget_state(cfg)
    rec.add("first.paused", paused)
    legal = paused.interrupts[0]
    await collect(
        rec,
        "first.legal",
        publish.astream(Command(resume={legal.id: "ok"}), cfg, context=ada),
    )
    rec.add("first.resume", await publish.ainvoke(Command(resume="ok"), cfg, context=ada))
    rec.add("first.state", await publish.aget_state(cfg))
    rec.add("calls.after", dict(CALLS))

    rec.add("second.invoke", await publish.ainvoke("beavers", cfg, context=ada))
    rec.add("second.legal", await publish.ainvoke(Command(resume="ok"), cfg, context=ada))
    rec.add("second.done", await publish.ainvoke(Command(resume="rework"), cfg, context=ada))
    rec.add("second.state", await publish.aget_state(cfg))
    rec.add(
        "history",
        [[list(s.next), s.metadata["step"]] async for s in publish.aget_state_history(cfg)],
    )

    cfg = {"configurable": {"thread_id": "together"}}
    both = Ctx(author="ada", together=True)
    result = await publish.ainvoke("geese", cfg, context=both)
    asked = []
    while "__interrupt__" in result:
        pending = result["__interrupt__"]
        asked.append(sorted(i.value["reviewer"] for i in pending))
        answers = {i.id: "ok" for i in pending}
        result = await publish.ainvoke(Command(resume=answers), cfg, context=both)
    rec.add("together.asked", asked)
    rec.add("together.result", result)
    rec.add("together.values", (await publish.aget_state(cfg)).values)
    rec.add("store.ada", [[list(i.namespace), i.key, i.value] for i in store.search(("ada",))])


def main(rec):
    asyncio.run(amain(rec))
