"""How the server writes and reads `Send`: as langgraph-api does.

langgraph-api serializes a `Send` in stream chunks and thread state as `{"node", "args"}` (checked
against `langgraph_api.serde.json_dumpb` of langgraph-api 0.16.7), and a client's
`Command(goto=...)` names a send's input `input` (langgraph-sdk's `Send` type); older clients of
ours sent `arg`, which is still read.
"""

from __future__ import annotations

from hitl_async import Command, Send
from hitl_async.server.encoding import dumps, jsonable, to_command


def test_a_send_is_written_with_langgraph_api_field_names() -> None:
    assert jsonable(Send("review", {"doc": 1})) == {"node": "review", "args": {"doc": 1}}
    assert dumps([Send("a", 2)]) == '[{"node":"a","args":2}]'


def test_a_goto_send_is_read_from_input_args_or_arg() -> None:
    for field in ("input", "args", "arg"):
        command = to_command({"goto": {"node": "review", field: {"doc": 1}}})
        assert isinstance(command, Command)
        assert command.goto == Send("review", {"doc": 1}), field
    listed = to_command({"goto": [{"node": "a", "input": 1}, "b"]})
    assert listed.goto == [Send("a", 1), "b"]
