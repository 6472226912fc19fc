"""`update_state(config, values)` without `as_node` on a thread whose older checkpoints were
pruned. LangGraph 1.2.22 infers the node the update stands for from the checkpoint alone (its
`versions_seen`), so no ancestor is needed; hitl-async keeps that node in every checkpoint for
the same reason. A checkpoint written by an older hitl-async does not keep it: its stored chain
is walked back, and an ancestor pruned from it is an `InvalidUpdateError` (LangGraph's
"Ambiguous update, specify as_node"), never a guess that routes the thread from the wrong
node. On every driver."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import InvalidUpdateError
from hitl_async._run import Run
from hitl_async.graph import END, START, StateGraph

pytestmark = pytest.mark.anyio


class Order(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    decision: str


def review_flow(saver: Any) -> Any:
    """review routes to ship (decision "ship") or to END; it pauses before ship."""

    def review(state: Order) -> dict[str, Any]:
        return {"log": ["review"], "decision": "ship"}

    def ship(state: Order) -> dict[str, Any]:
        return {"log": ["ship"]}

    b = StateGraph(Order)
    b.add_node("prepare", lambda s: {"log": ["prepare"]})
    b.add_node("review", review)
    b.add_node("ship", ship)
    b.add_edge(START, "prepare")
    b.add_edge("prepare", "review")
    b.add_conditional_edges("review", lambda s: "ship" if s["decision"] == "ship" else END)
    b.add_edge("ship", END)
    return b.compile(checkpointer=saver, interrupt_before=["ship"])


async def paused(saver: Any) -> tuple[Any, dict[str, Any]]:
    graph = review_flow(saver)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    await graph.ainvoke({"log": []}, config)
    assert (await graph.aget_state(config)).next == ("ship",)
    return graph, config


# test_pregel_async.py::test_send_react_interrupt (the update re-routes as its last writer),
# after the thread's history was pruned to its head
async def test_the_update_reroutes_as_the_last_writer_after_a_prune(saver: Any) -> None:
    graph, config = await paused(saver)
    assert await saver.prune(config["configurable"]["thread_id"], keep_last=1) > 0
    assert len([s async for s in graph.aget_state_history(config)]) == 1
    await graph.aupdate_state(config, {"decision": "hold"})
    state = await graph.aget_state(config)
    assert state.next == ()  # applied as "review", whose edge now goes to END
    assert state.values == {"log": ["prepare", "review"], "decision": "hold"}
    assert state.metadata["source"] == "update"


async def test_a_checkpoint_without_its_writer_and_a_pruned_chain_is_refused(
    saver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written before checkpoints kept their writer (simulated: none is kept) and then
    pruned cannot tell which node wrote last: the update is refused, naming `as_node`, and the
    thread is unchanged; naming it works."""
    made = Run.new_checkpoint

    def without_writer(self: Run, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.cp.writer = None

    monkeypatch.setattr(Run, "new_checkpoint", without_writer)
    graph, config = await paused(saver)
    before = await graph.aget_state(config)
    await saver.prune(config["configurable"]["thread_id"], keep_last=1)
    with pytest.raises(InvalidUpdateError, match="specify as_node") as refused:
        await graph.aupdate_state(config, {"decision": "hold"})
    assert "as_node=" in str(refused.value) and "no longer stored" in str(refused.value)
    assert (await graph.aget_state(config)).config == before.config
    await graph.aupdate_state(config, {"decision": "hold"}, as_node="review")
    assert (await graph.aget_state(config)).next == ()


async def test_without_a_prune_the_older_format_still_finds_the_writer(
    saver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored chain of a checkpoint without its writer still tells it when it is whole."""
    made = Run.new_checkpoint

    def without_writer(self: Run, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.cp.writer = None

    monkeypatch.setattr(Run, "new_checkpoint", without_writer)
    graph, config = await paused(saver)
    await graph.aupdate_state(config, {"decision": "hold"})
    assert (await graph.aget_state(config)).next == ()
