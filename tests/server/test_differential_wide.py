"""The wide differential test: the client script of tests/apps/differential_wide.py (every
stream mode with subgraphs and a chat model, joins, `Command(resume, update, goto)`, the
multitask strategies, `if_not_exists`, `on_disconnect`, thread search and history filters,
assistants' graphs, the store's paging, error answers) against `hitl serve` gives the transcript
recorded once against `langgraph dev` (tests/server/golden/langgraph_dev_wide.json), step by
step. An error step must give the same status and SDK exception class; its message is
hitl-async's own (it names the thing and the fix), so only its presence is checked (the SDK
reads no message where it raises httpx's own error). The steps
of `DIFFERENT_STEPS` (README's table) must give hitl-async's documented answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from apps.differential_wide import DIFFERENT_STEPS, run_wide_script
from apps.servers import CONFIG, drop_store, serving, store_url

pytestmark = pytest.mark.anyio

GOLDEN = Path(__file__).parent / "golden" / "langgraph_dev_wide.json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _without_message(outcome: Any) -> Any:
    if isinstance(outcome, dict) and "http_error" in outcome:
        return {k: v for k, v in outcome.items() if k != "message"}
    return outcome


async def test_same_wide_transcript_as_langgraph_dev(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    assert golden["recorded_with"]["langgraph-sdk"] == "0.4.14"
    url = store_url("sqlite", tmp_path)
    try:
        with serving(url, tmp_path, config=CONFIG.with_name("langgraph_wide.json")) as server:
            assert server.url is not None
            ours = await run_wide_script(server.url)
    finally:
        drop_store(url)
    assert [s["step"] for s in ours] == [s["step"] for s in golden["steps"]]
    for expected, got in zip(golden["steps"], ours, strict=True):
        if got["step"] in DIFFERENT_STEPS:
            continue
        assert _without_message(got["outcome"]) == _without_message(expected["outcome"]), got[
            "step"
        ]
        if isinstance(got["outcome"], dict) and "http_error" in got["outcome"]:
            # (None where the SDK raises httpx's own error, without reading the body)
            assert bool(got["outcome"]["message"]) == bool(expected["outcome"]["message"])
    different = {s["step"]: s["outcome"] for s in ours if s["step"] in DIFFERENT_STEPS}
    assert different["error: runs.join unknown run"] == {
        "http_error": 404,
        "exception": "HTTPStatusError",
        "message": None,
    }
    assert different["error: runs.create another graph on a thread"] == {
        "http_error": 409,
        "exception": "ConflictError",
        "message": "thread <id:1> belongs to graph 'agent'; assistant 'slow' runs graph 'slow'",
    }
