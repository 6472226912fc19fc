"""Inputs for comparing hitl-async's `ValidationNode` with LangGraph's on the same values. Runs
under hitl-async's tests and, to make the golden file, under a Python with LangGraph:

    cd tests/prebuilt && /work/lgvenv/bin/python validation_cases.py > golden/validation.json

Each case records the node's output (called directly, and in a one-node graph over a list of
messages) as plain data, or the error (type and first line).
"""

# No `from __future__ import annotations`: the schemas below are read by pydantic.

import json
import sys
import warnings
from typing import Annotated, Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel, field_validator
from pydantic.v1 import BaseModel as BaseModelV1


class SelectNumber(BaseModel):
    a: int

    @field_validator("a")
    @classmethod
    def a_must_be_meaningful(cls, v: int) -> int:
        if v != 37:
            raise ValueError("Only 37 is allowed")
        return v


class OldStyle(BaseModelV1):
    name: str


def pick_color(color: str, shade: int = 1) -> str:
    """Pick a color."""
    return color


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return query


def ai(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
    return AIMessage(
        "", tool_calls=[{"name": n, "args": a, "id": f"c{i}"} for i, (n, a) in enumerate(calls)]
    )


def plain(result: Any) -> Any:
    messages = result["messages"] if isinstance(result, dict) else result
    shown = [
        {
            "class": type(m).__name__,
            "content": m.content,
            "name": getattr(m, "name", None),
            "tool_call_id": getattr(m, "tool_call_id", None),
            "additional_kwargs": m.additional_kwargs,
        }
        for m in messages
    ]
    return {"dict": shown} if isinstance(result, dict) else shown


def make_cases(names: dict[str, Any]) -> dict[str, Any]:
    ValidationNode, StateGraph = names["ValidationNode"], names["StateGraph"]
    START, add_messages = names["START"], names["add_messages"]
    node = ValidationNode([SelectNumber, OldStyle, pick_color, lookup])

    def graph_run(message: AIMessage) -> Any:
        builder = StateGraph(Annotated[list, add_messages])
        builder.add_node("validation", node)
        builder.add_edge(START, "validation")
        return builder.compile().invoke([HumanMessage("hi", id="h"), message])[2:]

    def custom(error: BaseException, call: Any, schema: Any) -> str:
        return f"{call['name']} ({schema.__name__}): {type(error).__name__}"

    return {
        "valid calls of each kind": lambda: node.invoke(
            [
                ai(
                    ("SelectNumber", {"a": 37}),
                    ("OldStyle", {"name": "x"}),
                    ("pick_color", {"color": "red"}),
                    ("lookup", {"query": "q"}),
                )
            ]
        ),
        "invalid calls": lambda: node.invoke(
            {
                "messages": [
                    ai(
                        ("SelectNumber", {"a": 3}),
                        ("OldStyle", {}),
                        ("pick_color", {"shade": "dark"}),
                    )
                ]
            }
        ),
        "custom format_error": lambda: ValidationNode([SelectNumber], format_error=custom).invoke(
            [ai(("SelectNumber", {"a": "x"}))]
        ),
        "in a graph over a list": lambda: graph_run(ai(("SelectNumber", {"a": 37}))),
        "unknown tool": lambda: node.invoke([ai(("nope", {}))]),
        "last message not from the AI": lambda: node.invoke([HumanMessage("hi")]),
        "no messages": lambda: node.invoke({"messages": []}),
        "a tool without a pydantic schema": lambda: ValidationNode(
            [type(lookup)(name="raw", description="d", args_schema={"type": "object"}, func=str)]
        ),
        "unsupported schema": lambda: ValidationNode([42]),
    }


def run_all(names: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, case in make_cases(names).items():
            try:
                out[name] = plain(case())
            except Exception as exc:
                out[name] = {"error": type(exc).__name__, "message": str(exc).splitlines()[0]}
    return out


if __name__ == "__main__":
    from importlib.metadata import version

    from langgraph.graph import START, StateGraph, add_messages
    from langgraph.prebuilt import ValidationNode

    names = dict(ValidationNode=ValidationNode, StateGraph=StateGraph, START=START)
    names["add_messages"] = add_messages
    versions = {p: version(p) for p in ("langgraph", "langgraph-prebuilt", "langchain-core")}
    json.dump(
        {"versions": versions, "results": run_all(names)},
        sys.stdout,
        indent=1,
        sort_keys=True,
        ensure_ascii=False,
    )
    sys.stdout.write("\n")
