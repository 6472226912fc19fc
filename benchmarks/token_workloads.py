"""Token streaming (issue #13): what `stream_mode="messages"` adds per token a chat model
streams inside a node, and how long the first token takes to reach the consumer.

The graph is an agent's smallest shape: a `MessagesState` graph whose one node calls a scripted
langchain-core chat model (`ScriptedChatModel`, 200 `AIMessageChunk` tokens, no sleep) with
`.ainvoke()` (`tokens200`) or `.invoke()` in a `def` node (`tokens200-sync`), consumed with
`astream(..., stream_mode="messages")` / the sync `stream(...)`. Per run:
- per-token overhead = (time from the stream call to the 200th token - time to stream the same
  model directly, outside any graph, to its 200th token) ÷ 200, in µs — the headline;
- time to first token: from the stream call to the first message chunk, in ms;
- a breakdown, from the same graph and model streaming 1 token (interleaved): µs per token
  beyond the first (graph minus model alone), what langchain-core itself adds per token once any
  handler listens (the model streamed to a do-nothing handler), and the run's fixed cost.
The model never waits, as a real one does between tokens, so the consumer gets a turn only when
the node's task (or thread) lets it: on both engines the first token can arrive close to the
last. Live arrival of tokens spaced in time is what the tests check, not this workload.
Both engines must deliver the 200 tokens in order with the same content, tagged with the node's
name, and store the whole answer as one message in the thread's state.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.stores import Store
    from benchmarks.workloads import Engine, Sizes

TOKENS = 200
SCRIPT = [f"tok{i} " for i in range(TOKENS)]


@functools.cache
def scripted_model_class() -> type[Any]:
    """`ScriptedChatModel(tokens=n)`: a langchain-core chat model that streams the first `n`
    tokens of `SCRIPT` as `AIMessageChunk`s, one per token, with no delay. Defined on first
    use, so the suite imports without langchain-core (these workloads then fail with the
    ImportError as their reason)."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    class ScriptedChatModel(BaseChatModel):
        tokens: int = TOKENS

        @property
        def _llm_type(self) -> str:
            return "scripted-bench"

        def _chunks(self) -> Iterator[Any]:
            for i, token in enumerate(SCRIPT[: self.tokens]):
                # the last one says so, or langchain-core would add an empty closing chunk
                last = {"chunk_position": "last"} if i == self.tokens - 1 else {}
                yield ChatGenerationChunk(message=AIMessageChunk(content=token, **last))

        def _generate(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> Any:
            answer = AIMessage(content="".join(SCRIPT[: self.tokens]))
            return ChatResult(generations=[ChatGeneration(message=answer)])

        def _stream(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> Iterator[Any]:
            # langchain-core's `stream`/`invoke` report each chunk to the callbacks themselves
            yield from self._chunks()

        async def _astream(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> AsyncIterator[Any]:
            for chunk in self._chunks():
                yield chunk

    return ScriptedChatModel


@functools.cache
def _noop_handler_class() -> type[Any]:
    from langchain_core.callbacks import BaseCallbackHandler

    class NoopTokenHandler(BaseCallbackHandler):
        """Takes each token and does nothing: what langchain-core itself costs per token once
        any handler listens (an engine's handler cannot cost less)."""

        run_inline = True

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            pass

    return NoopTokenHandler


def _messages_state(engine: Engine) -> Any:
    if engine.name == "langgraph":
        from langgraph.graph import MessagesState
    else:
        from hitl_async.graph import MessagesState
    return MessagesState


def _graph(engine: Engine, saver: Any, sync: bool, tokens: int) -> Any:
    model = scripted_model_class()(tokens=tokens)

    async def call_async(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def call_sync(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = engine.StateGraph(_messages_state(engine))
    builder.add_node("model", call_sync if sync else call_async)
    builder.add_edge(engine.START, "model")
    builder.add_edge("model", engine.END)
    return builder.compile(checkpointer=saver)


def _config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def _inputs() -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "count to 200"}]}


class _Clock:
    """Arrival times of the tokens of one run, checked against the script."""

    def __init__(self, tokens: int) -> None:
        self.expected = SCRIPT[:tokens]
        self.t0 = time.perf_counter()
        self.times: list[float] = []
        self.texts: list[str] = []

    def token(self, chunk: Any, metadata: dict[str, Any]) -> None:
        self.times.append(time.perf_counter())
        assert type(chunk).__name__ == "AIMessageChunk", f"not a token: {chunk!r}"
        assert metadata.get("langgraph_node") == "model", metadata
        self.texts.append(str(chunk.content))

    def check(self) -> tuple[float, float]:
        """(to the first token, to the last token), in seconds from the stream call."""
        texts = self.texts
        assert texts == self.expected, (len(texts), texts[:3], texts[-3:])
        return self.times[0] - self.t0, self.times[-1] - self.t0


NODE = {"langgraph_node": "model"}


class _Runs:
    """One timing per case, run interleaved; medians in `result`. Cases: the graph streaming
    200 tokens and 1 token, and the model streamed directly (no graph) with no handler and
    with a do-nothing handler, 200 tokens and 1."""

    def __init__(self) -> None:
        self.first: list[float] = []
        self.t: dict[str, list[float]] = {}

    def add(self, case: str, seconds: float) -> None:
        self.t.setdefault(case, []).append(seconds)

    def med(self, case: str) -> float:
        return median_of(self.t[case])

    def result(self) -> Result:
        def marginal(case: str) -> float:  # µs per token beyond the first
            return (self.med(f"{case}200") - self.med(f"{case}1")) / (TOKENS - 1) * 1e6

        return Result(
            (self.med("graph200") - self.med("model200")) / TOKENS * 1e6,
            "µs/token",
            {
                "ttft_ms": median_of(self.first) * 1e3,
                "last_token_ms": self.med("graph200") * 1e3,
                "model_us": self.med("model200") / TOKENS * 1e6,
                "marginal_us": marginal("graph") - marginal("model"),
                "handler_floor_us": marginal("noop") - marginal("model"),
                "fixed_ms": (self.med("graph1") - self.med("model1")) * 1e3,
            },
        )


async def _stream_async(graph: Any, thread: str, tokens: int) -> tuple[float, float]:
    clock = _Clock(tokens)
    async for chunk, metadata in graph.astream(_inputs(), _config(thread), stream_mode="messages"):
        clock.token(chunk, metadata)
    return clock.check()


async def _model_async(model: Any, handlers: list[Any]) -> float:
    clock = _Clock(model.tokens)
    async for chunk in model.astream("count to 200", {"callbacks": handlers}):
        clock.token(chunk, NODE)
    return clock.check()[1]


def _stream_sync(graph: Any, thread: str, tokens: int) -> tuple[float, float]:
    clock = _Clock(tokens)
    for chunk, metadata in graph.stream(_inputs(), _config(thread), stream_mode="messages"):
        clock.token(chunk, metadata)
    return clock.check()


def _model_sync(model: Any, handlers: list[Any]) -> float:
    clock = _Clock(model.tokens)
    for chunk in model.stream("count to 200", {"callbacks": handlers}):
        clock.token(chunk, NODE)
    return clock.check()[1]


def _check_answer(messages: list[Any]) -> None:
    assert [m.type for m in messages] == ["human", "ai"], messages
    assert messages[-1].content == "".join(SCRIPT), str(messages[-1].content)[:60]


async def tokens200(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """An async node calling `ainvoke` on the scripted model, consumed with `astream`."""
    graphs = {n: _graph(engine, store.saver, False, n) for n in (TOKENS, 1)}
    models = {n: scripted_model_class()(tokens=n) for n in (TOKENS, 1)}
    noop = [_noop_handler_class()()]
    runs = _Runs()
    for i in range(sizes.chain_runs + 1):  # the first round warms up
        for n in (TOKENS, 1):
            first, last = await _stream_async(graphs[n], f"tokens{n}-{i}", n)
            alone = await _model_async(models[n], [])
            with_noop = await _model_async(models[n], noop)
            if i:
                runs.add(f"graph{n}", last)
                runs.add(f"model{n}", alone)
                runs.add(f"noop{n}", with_noop)
                if n == TOKENS:
                    runs.first.append(first)
    state = await graphs[TOKENS].aget_state(_config(f"tokens{TOKENS}-1"))
    _check_answer(state.values["messages"])
    return runs.result()


async def tokens200_sync(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """A `def` node calling `invoke` on the scripted model, consumed with the sync `stream()`
    from a plain thread."""
    graphs = {n: _graph(engine, store.saver, True, n) for n in (TOKENS, 1)}
    models = {n: scripted_model_class()(tokens=n) for n in (TOKENS, 1)}
    noop = [_noop_handler_class()()]

    def body() -> Result:
        runs = _Runs()
        for i in range(sizes.chain_runs + 1):  # the first round warms up
            for n in (TOKENS, 1):
                first, last = _stream_sync(graphs[n], f"tokens{n}-{i}", n)
                alone = _model_sync(models[n], [])
                with_noop = _model_sync(models[n], noop)
                if i:
                    runs.add(f"graph{n}", last)
                    runs.add(f"model{n}", alone)
                    runs.add(f"noop{n}", with_noop)
                    if n == TOKENS:
                        runs.first.append(first)
        state = graphs[TOKENS].get_state(_config(f"tokens{TOKENS}-1"))
        _check_answer(state.values["messages"])
        return runs.result()

    return await in_plain_thread(body)


TOKEN_WORKLOADS = {"tokens200-sync": tokens200_sync, "tokens200": tokens200}

TOKEN_SYNC_API = {"tokens200-sync"}
"""Token workloads that call the sync API: LangGraph needs its sync savers for them."""

TOKEN_UNITS: dict[str, tuple[str, bool]] = {
    "tokens200-sync": ("µs/token", True),
    "tokens200": ("µs/token", True),
}

# At the end: `benchmarks.workloads` imports this module's tables at its own end.
from benchmarks.user_workloads import in_plain_thread  # noqa: E402
from benchmarks.workloads import Result, median_of  # noqa: E402
