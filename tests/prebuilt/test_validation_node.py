"""`ValidationNode` (`hitl_async.prebuilt`, deprecated as in LangGraph 1.0): the same messages
and errors as LangGraph 1.2.22's on the same inputs (golden file), and its deprecation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from validation_cases import run_all

from hitl_async.graph import START, StateGraph, add_messages
from hitl_async.prebuilt import ValidationNode

GOLDEN = Path(__file__).parent / "golden" / "validation.json"


def test_same_results_as_langgraph_on_the_same_inputs() -> None:
    golden = json.loads(GOLDEN.read_text())["results"]
    names = dict(
        ValidationNode=ValidationNode, StateGraph=StateGraph, START=START, add_messages=add_messages
    )
    ours = run_all(names)
    assert set(ours) == set(golden)
    for name, expected in golden.items():
        assert ours[name] == expected, name


def test_it_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="ValidationNode is deprecated"):
        node = ValidationNode([])
    assert node.name == "validation" and node.schemas_by_name == {}
