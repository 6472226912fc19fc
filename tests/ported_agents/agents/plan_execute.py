"""Ported agent 15: plan-and-execute. A planner fans the plan's steps out with one `Send`
each; the executors (a `StreamWriter` parameter) merge results through a custom dict reducer;
a replanner either loops with a new plan (the results reset with `Overwrite`) or answers. The
graph has separate input and output schemas and a node reading a private schema, its prologue
is an `add_sequence`; streamed as `["checkpoints", "custom"]` and `values`."""

import operator
from typing import Annotated

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Overwrite, Send, StreamWriter
from ported_support import ScriptedChatModel, ai
from typing_extensions import TypedDict


def merge(left: dict, right: dict) -> dict:
    """Results by step index; a later result for an index wins."""
    return {**left, **right}


class Input(TypedDict):
    objective: str


class Output(TypedDict):
    answer: str
    rounds: int


class State(Input, Output):
    plan: list[str]
    results: Annotated[dict, merge]
    log: Annotated[list[str], operator.add]


class Audit(TypedDict):
    results: dict
    log: list[str]


class Step(TypedDict):
    step: str
    index: int


def build(model):
    def normalise(state: Input):
        return {"objective": state["objective"].strip().lower(), "rounds": 0}

    def announce(state: State):
        return {"log": [f"objective: {state['objective']}"]}

    def planner(state: State):
        reply = model.invoke(state["objective"])
        return {"plan": reply.content.split("; "), "rounds": state["rounds"] + 1}

    def fan_out(state: State):
        return [Send("execute", {"step": s, "index": n}) for n, s in enumerate(state["plan"])]

    def execute(step: Step, writer: StreamWriter):
        writer({"executing": step["step"]})
        return {"results": {str(step["index"]): step["step"].upper()}, "log": [step["step"]]}

    def audit(state: Audit):
        return {"log": [f"audited {len(state['results'])} results"]}

    def replan(state: State):
        if state["rounds"] < 2:
            return {"results": Overwrite({}), "log": ["replanning"]}
        done = ", ".join(state["results"][k] for k in sorted(state["results"]))
        return {"answer": done}

    def again(state: State):
        return "planner" if "answer" not in state else END

    builder = StateGraph(State, input_schema=Input, output_schema=Output)
    builder.add_sequence([normalise, announce])
    builder.add_node(planner)
    builder.add_node(execute)
    builder.add_node(audit)
    builder.add_node(replan)
    builder.add_edge(START, "normalise")
    builder.add_edge("announce", "planner")
    builder.add_conditional_edges("planner", fan_out, ["execute"])
    builder.add_edge("execute", "audit")
    builder.add_edge("audit", "replan")
    builder.add_conditional_edges("replan", again, ["planner", END])
    return builder.compile(checkpointer=InMemorySaver())


def main(rec):
    model = ScriptedChatModel(
        messages=iter(
            [
                ai("find data; chart data"),
                ai("find data; clean data; chart data"),
                ai("just answer"),
                ai("answer; check"),
                ai("one"),
                ai("two"),
            ]
        )
    )
    graph = build(model)
    rec.add("mermaid", graph.get_graph().draw_mermaid())
    rec.add("input_schema", graph.get_input_jsonschema())
    rec.add("output_schema", graph.get_output_jsonschema())
    cfg = {"configurable": {"thread_id": "plan"}}
    chunks = list(
        graph.stream({"objective": "  Chart the DATA "}, cfg, stream_mode=["checkpoints", "custom"])
    )
    rec.stream("run.checkpoints", (c for c in chunks if c[0] == "checkpoints"))
    # The executors run concurrently: their custom chunks come in finish order.
    rec.stream("run.custom", (c for c in chunks if c[0] == "custom"), unordered=True)
    rec.add("state", graph.get_state(cfg))
    cfg = {"configurable": {"thread_id": "values"}}
    rec.stream("values", graph.stream({"objective": "quick"}, cfg, stream_mode="values"))
    rec.add("invoke", graph.invoke({"objective": "again"}, {"configurable": {"thread_id": "3"}}))
