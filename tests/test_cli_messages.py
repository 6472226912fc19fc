"""`hitl show`, `history` and `inbox` on a thread of langchain-core messages, without being given
the graph: the messages are on the serializer's allow-list, so they display (role first, only
the fields that are set) instead of being reported as damaged."""

from __future__ import annotations

import json
from pathlib import Path

import test_cli
from test_cli import Store, ok, ok_json

store = test_cli.store  # the fixture: a fresh store of each kind


def test_message_threads_display_without_the_graph(store: Store, tmp_path: Path) -> None:
    flags = store.flags
    started = ok_json(
        "run",
        "apps.chat_app:graph",
        "--thread",
        "m1",
        "--input",
        json.dumps({"messages": [["user", "refund me"]]}),
        *flags,
        cwd=tmp_path,
    )
    assert started["status"] == "paused"
    shown = ok_json("show", "--thread", "m1", *flags, cwd=tmp_path)
    human, ai = shown["values"]["messages"]
    assert human["type"] == "human" and human["content"] == "refund me"
    assert ai["type"] == "ai" and ai["id"] == "ai-1"
    assert ai["tool_calls"] == [
        {"name": "refund", "args": {"amount": 5}, "id": "call_1", "type": "tool_call"}
    ]
    assert "undecodable" not in json.dumps(shown)
    history = ok_json("history", "--thread", "m1", *flags, cwd=tmp_path)
    assert [len(h["values"].get("messages", [])) for h in history] == [2, 1, 0]
    (pending,) = ok_json("inbox", *flags, cwd=tmp_path)
    assert pending["value"]["call"]["name"] == "refund"
    text = ok("show", "--thread", "m1", *flags, cwd=tmp_path)
    assert '"type": "ai"' in text and "damaged" not in text
