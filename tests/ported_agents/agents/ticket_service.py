"""Ported agent 20: a ticket classifier served to many callers. Per-call settings come in a
`context_schema` (read through `Runtime` and `get_runtime()`), a node reads its `config`
(metadata, tags, configurable); an expensive node is cached (`CachePolicy` with a key function,
`InMemoryCache`); the graph is preconfigured with `with_config` and run with `batch`,
`batch(return_exceptions=True)`, `abatch` and `batch_as_completed`; `durability="exit"` keeps
only the last checkpoint."""

import asyncio
from dataclasses import dataclass

from langchain_core.runnables import RunnableConfig
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime, get_runtime
from langgraph.types import CachePolicy
from typing_extensions import TypedDict


@dataclass
class Settings:
    tenant: str
    strict: bool = False


class Ticket(TypedDict, total=False):
    text: str
    label: str
    score: int
    seen_by: list[str]


CALLS = {"score": 0}


def build(checkpointer=None):
    def classify(state: Ticket, runtime: Runtime[Settings]):
        if not state["text"]:
            raise ValueError("empty ticket")
        urgent = "down" in state["text"] or (runtime.context.strict and "slow" in state["text"])
        return {"label": "urgent" if urgent else "normal"}

    def score(state: Ticket):
        CALLS["score"] += 1
        tenant = get_runtime(Settings).context.tenant
        return {"score": len(state["text"]) + (10 if tenant == "vip" else 0)}

    def stamp(state: Ticket, config: RunnableConfig):
        meta = config["metadata"]
        who = [
            meta["langgraph_node"],
            str(meta["langgraph_step"]),
            ",".join(t for t in config.get("tags", []) if not t.startswith("graph:step")),
            str(config["configurable"].get("desk")),
        ]
        return {"seen_by": who}

    builder = StateGraph(Ticket, context_schema=Settings)
    builder.add_node(classify)
    builder.add_node(score, cache_policy=CachePolicy(key_func=lambda s: s["text"].lower().strip()))
    builder.add_node(stamp)
    builder.add_edge(START, "classify")
    builder.add_edge("classify", "score")
    builder.add_edge("score", "stamp")
    builder.add_edge("stamp", END)
    return builder.compile(cache=InMemoryCache(), checkpointer=checkpointer)


def main(rec):
    graph = build()
    rec.add("context_schema", graph.get_context_jsonschema())
    acme = Settings(tenant="acme")
    rec.stream(
        "warm.updates",
        graph.stream({"text": "Site is down"}, context=acme, stream_mode="updates"),
    )
    rec.stream(
        "hit.updates",
        graph.stream({"text": "  site is DOWN "}, context=acme, stream_mode="updates"),
    )
    rec.add("calls.after-hit", dict(CALLS))

    desk = graph.with_config(configurable={"desk": "emea"}, tags=["support"])
    rec.add(
        "batch",
        desk.batch(
            [{"text": "site is down"}, {"text": "app is slow"}, {"text": "login is slow"}],
            context=Settings(tenant="vip", strict=True),
        ),
    )
    rec.add("calls.after-batch", dict(CALLS))
    results = desk.batch(
        [{"text": "printer jam"}, {"text": ""}], return_exceptions=True, context=acme
    )
    rec.add("batch.errors", [type(r).__name__ if isinstance(r, Exception) else r for r in results])

    async def run_async():
        out = await desk.abatch(
            [{"text": "mail is down"}, {"text": "mail is down"}],
            {"max_concurrency": 1},
            context=acme,
        )
        return out

    rec.add("abatch", asyncio.run(run_async()))
    done = sorted(
        (i, r["label"])
        for i, r in graph.batch_as_completed(
            [{"text": "a is down"}, {"text": "b is fine"}], context=acme
        )
    )
    rec.add("batch_as_completed", done)
    graph.clear_cache()
    rec.add("cleared", graph.invoke({"text": "site is down"}, context=acme))
    rec.add("calls.end", dict(CALLS))

    saved = build(InMemorySaver())
    for durability in ("exit", "sync"):
        cfg = {"configurable": {"thread_id": durability}}
        rec.add(
            f"durability.{durability}",
            saved.invoke({"text": "disk is slow"}, cfg, context=acme, durability=durability),
        )
        rec.add(
            f"durability.{durability}.history",
            [[list(s.next), s.metadata["step"]] for s in saved.get_state_history(cfg)],
        )
