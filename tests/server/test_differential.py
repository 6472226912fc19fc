"""The differential test: the client script of tests/apps/differential.py against `hitl serve`
gives the transcript recorded once against `langgraph dev` (tests/server/golden/, with the
versions), step by step, except the steps where our documented strict semantics differ — and
those must show our strict answer (409 with the engine's error name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apps.differential import STRICT_STEPS, run_script
from apps.servers import CONFIG, drop_store, serving, store_url

pytestmark = pytest.mark.anyio

GOLDEN = Path(__file__).parent / "golden" / "langgraph_dev.json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_same_transcript_as_langgraph_dev(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    assert golden["recorded_with"]["langgraph-sdk"] == "0.4.14"
    url = store_url("sqlite", tmp_path)
    try:
        with serving(
            url, tmp_path, config=CONFIG.with_name("langgraph_differential.json")
        ) as server:
            assert server.url is not None
            ours = await run_script(server.url)
    finally:
        drop_store(url)
    assert [s["step"] for s in ours] == [s["step"] for s in golden["steps"]]
    for expected, got in zip(golden["steps"], ours, strict=True):
        if got["step"] in STRICT_STEPS:
            continue
        assert got["outcome"] == expected["outcome"], got["step"]
    strict = {s["step"]: s["outcome"] for s in ours if s["step"] in STRICT_STEPS}
    assert strict["resume unknown interrupt id"] == {
        "http_error": 409,
        "error": "UnknownInterruptError",
    }
    assert strict["resume a thread that is not interrupted"] == {
        "http_error": 409,
        "error": "NoPendingInterruptError",
    }
    assert strict["runs.list"] == ["success", "success"]
