"""Run one ported agent and print its record as JSON.

`python runner.py AGENT langgraph` runs `agents/AGENT.py` as written (LangGraph's imports);
`python runner.py AGENT hitl_async` runs it with the imports renamed, as a user ports it. The
record's ids (checkpoint, run, task and interrupt ids, message ids are already dropped) are
replaced by `<id:N>` in order of first appearance, so both sides compare equal when they refer
to the same things in the same order.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AGENTS = HERE / "agents"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ported_support import ID, Recorder  # noqa: E402

_IMPORT = re.compile(r"^(\s*(?:from|import)\s+)langgraph(?=[.\s])", re.MULTILINE)


def port(source: str) -> str:
    """The agent's source with `langgraph.*` imports renamed to `hitl_async.*`."""
    return _IMPORT.sub(r"\1hitl_async", source)


def normalise_ids(value: Any) -> Any:
    """The record with every id-looking string replaced by its order of first appearance."""
    seen: dict[str, str] = {}

    def name(match: re.Match[str]) -> str:
        return seen.setdefault(match.group(0), f"<id:{len(seen)}>")

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return ID.sub(name, v)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        return v

    return walk(value)


def run_agent(agent: str, backend: str) -> Any:
    """Load and run `agents/<agent>.py` against `backend`; its normalised record."""
    source = (AGENTS / f"{agent}.py").read_text()
    if backend == "hitl_async":
        source = port(source)
    module = types.ModuleType(f"ported_{agent}_{backend}")
    module.__file__ = str(AGENTS / f"{agent}.py")
    sys.modules[module.__name__] = module  # dataclasses and typing resolve names through it
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
        recorder = Recorder()
        module.main(recorder)
    finally:
        del sys.modules[module.__name__]
    return normalise_ids(json.loads(recorder.dump()))


if __name__ == "__main__":
    print(json.dumps(run_agent(sys.argv[1], sys.argv[2]), indent=1, sort_keys=True))
