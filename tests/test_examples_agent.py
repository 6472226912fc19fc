"""`examples/tool_approval_agent.py`: the LangGraph tool-approval agent runs on hitl-async with
only its imports renamed and prints exactly what LangGraph 1.2.22 printed (the golden file), in
memory and on SQLite across two processes.

Re-record the golden on LangGraph (needs a Python with langgraph, langgraph-prebuilt and
langgraph-checkpoint-sqlite installed):

    python tests/test_examples_agent.py /path/to/langgraph/python
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tool_approval_agent.py"
GOLDEN = ROOT / "examples" / "tool_approval_agent.golden.txt"

RENAMES = {
    "hitl_async.checkpoint.memory": "langgraph.checkpoint.memory",
    "hitl_async.checkpoint.sqlite": "langgraph.checkpoint.sqlite",
    "hitl_async.graph": "langgraph.graph",
    "hitl_async.prebuilt": "langgraph.prebuilt",
    "hitl_async.types": "langgraph.types",
}


def langgraph_source() -> str:
    """The example as a LangGraph program: each `from hitl_async... import` line renamed."""

    def rename(match: re.Match[str]) -> str:
        return f"from {RENAMES[match.group(1)]} import"

    pattern = r"^from (" + "|".join(re.escape(m) for m in RENAMES) + r") import"
    return re.sub(pattern, rename, EXAMPLE.read_text(), flags=re.MULTILINE)


def golden() -> str:
    lines = GOLDEN.read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("#"))


def run(python: str, script: Path, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [python, str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_only_the_imports_differ_from_the_langgraph_program() -> None:
    ours = EXAMPLE.read_text().splitlines()
    theirs = langgraph_source().splitlines()
    changed = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
    assert len(changed) == len(RENAMES)
    assert all(
        a.startswith("from hitl_async.") and b.startswith("from langgraph.") for a, b in changed
    )
    assert "hitl_async" not in langgraph_source().replace("hitl-async", "")


def test_in_memory_output_is_langgraphs(tmp_path: Path) -> None:
    assert run(sys.executable, EXAMPLE, "memory", cwd=tmp_path) == golden()


def test_on_sqlite_paused_in_one_process_resumed_in_another(tmp_path: Path) -> None:
    db = str(tmp_path / "agent.sqlite")
    paused = run(sys.executable, EXAMPLE, "pause", "--db", db, cwd=tmp_path)
    resumed = run(sys.executable, EXAMPLE, "resume", "--db", db, cwd=tmp_path)
    assert paused + resumed == golden()


def record(python: str) -> None:
    """Run the LangGraph program with `python` and write the golden file (with versions)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "tool_approval_agent_langgraph.py"
        script.write_text(langgraph_source())
        out = run(python, script, "memory", cwd=Path(tmp))
        db = str(Path(tmp) / "agent.sqlite")
        two = run(python, script, "pause", "--db", db, cwd=Path(tmp))
        two += run(python, script, "resume", "--db", db, cwd=Path(tmp))
        assert two == out, "LangGraph printed different lines on SQLite than in memory"
        versions = subprocess.run(
            [
                python,
                "-c",
                "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' "
                "for p in ('langgraph', 'langgraph-prebuilt', 'langgraph-checkpoint-sqlite', "
                "'langchain-core')))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    header = (
        f"# Recorded on LangGraph ({versions}) by `python tests/test_examples_agent.py PYTHON`:\n"
        "# examples/tool_approval_agent.py with its imports renamed to langgraph, in memory\n"
        "# (and checked identical on SQLite across two processes).\n"
    )
    GOLDEN.write_text(header + out)


if __name__ == "__main__":
    record(sys.argv[1])
