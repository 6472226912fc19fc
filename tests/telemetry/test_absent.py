"""Without OpenTelemetry (or with its API but no provider) hitl-async builds and imports nothing
of it, emits nothing, and still logs structured records. Each case runs in a fresh interpreter,
so what the rest of the suite imported cannot hide an import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from apps.services import require_package

ROOT = Path(__file__).resolve().parents[2]

RUN = """
import asyncio, logging, sys
from typing_extensions import TypedDict
from hitl_async import END, START, Command, InMemorySaver, StateGraph, Worker, interrupt
from hitl_async.telemetry import get_logger, inherited_trace
from hitl_async.telemetry._detect import current

records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger("hitl_async").addHandler(handler)
log = get_logger("hitl_async.run")

class S(TypedDict, total=False):
    item: str
    answer: str

async def review(state):
    assert inherited_trace() is None
    log.warning("reviewing")
    return {"answer": interrupt({"approve": state["item"]})}

b = StateGraph(S)
b.add_node("review", review)
b.add_edge(START, "review")
b.add_edge("review", END)
saver = InMemorySaver()
graph = b.compile(checkpointer=saver, name="plain")

async def main():
    cfg = {"configurable": {"thread_id": "t"}}
    assert (await graph.ainvoke({"item": "x"}, cfg))["__interrupt__"]
    paused = await saver.load("t")
    assert all(w.channel != "__trace__" for w in paused.writes)
    handle = await graph.asubmit(Command(resume="yes"), cfg)
    request = await saver.get_request(handle.id)
    assert b"trace_context" not in request.payload
    await Worker(graph, poll=0.01).run(max_requests=1)
    assert (await handle.result(timeout=5)) == {"item": "x", "answer": "yes"}
    return handle.id

run_id = asyncio.run(main())
assert current() is None
assert "_hitl_async_instrumented" not in vars(saver)
here, there = [r for r in records if r.getMessage() == "reviewing"]
assert (here.thread_id, here.run_id) == ("t", None) and here.checkpoint_id is not None
assert (there.thread_id, there.run_id) == ("t", run_id)  # the Worker's run: the request id
"""

BLOCKED = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Block())
"""

NO_PROVIDER = """
from opentelemetry import metrics, trace
from opentelemetry.trace import NonRecordingSpan

built = []
original = NonRecordingSpan.__init__
def counting(self, *args, **kwargs):
    built.append(1)
    original(self, *args, **kwargs)
NonRecordingSpan.__init__ = counting
"""


def run_script(code: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_without_opentelemetry_nothing_of_it_is_imported() -> None:
    run_script(
        BLOCKED
        + RUN
        + """
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
assert loaded == [], loaded
"""
    )


def test_with_the_api_but_no_provider_nothing_is_built_and_the_sdk_stays_out() -> None:
    require_package("opentelemetry.trace", '".[otel]" (opentelemetry-api)')
    run_script(
        NO_PROVIDER
        + RUN
        + """
assert built == [], f"{len(built)} spans built"
assert not [m for m in sys.modules if m.startswith("opentelemetry.sdk")]
"""
    )
