"""Every code block of the README runs, so the README cannot rot.

Python blocks run as scripts. Shell blocks run as one script each (`set -e`) in a scratch
directory laid out like the repository root after `make demo` (`.venv` there, and NOT on PATH:
commands must work as typed, e.g. `.venv/bin/hitl ...`); a `make TARGET` line runs as
`make -n TARGET` (a dry run: the target exists and its recipe expands — running `make test` from
inside the tests would recurse). A line may end with `# slow`, `# server` or `# not-run: reason`
to be checked for syntax only (`bash -n`): those need minutes, a server process that never
exits, or an install from PyPI.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SYNTAX_ONLY = re.compile(r"#\s*(slow|server|not-run\b.*)$")


def blocks(kind: set[str]) -> list[tuple[int, str]]:
    text = README.read_text()
    out = []
    for m in FENCE.finditer(text):
        if m.group(1) in kind:
            line = text[: m.start()].count("\n") + 1
            out.append((line, m.group(2)))
    return out


def env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
    }


@pytest.mark.parametrize(("line", "code"), blocks({"python"}), ids=lambda v: str(v)[:12])
def test_python_block_runs(line: int, code: str, tmp_path: Path) -> None:
    script = tmp_path / f"readme_{line}.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"README.md line {line}:\n{done.stderr}"


def shell_blocks() -> list[tuple[int, str]]:
    return blocks({"bash", "sh", "console"})


def runnable(code: str) -> str:
    """The block as a script: `make` lines dry-run, marked lines left out (syntax-checked)."""
    out = ["set -euo pipefail"]
    for raw in code.splitlines():
        command = raw.strip()
        if not command or command.startswith("#") or SYNTAX_ONLY.search(command):
            continue
        if command.startswith("make "):
            bare = command.split("#", 1)[0].split()
            command = " ".join(["make", "-n", "-C", str(ROOT), *bare[1:]])
        out.append(command)
    return "\n".join(out)


def as_after_make_demo(tmp_path: Path) -> dict[str, str]:
    """`tmp_path` with the virtualenv at `.venv` (as `make` leaves it in the repository root);
    the environment of a shell where it is not activated."""
    venv = Path(sys.executable).parent
    (tmp_path / ".venv").symlink_to(venv.parent, target_is_directory=True)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != venv]
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HITL_STORE")}
    return {**environ, "PATH": os.pathsep.join(path), "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize(("line", "code"), shell_blocks(), ids=lambda v: str(v)[:12])
def test_shell_block_runs(line: int, code: str, tmp_path: Path) -> None:
    syntax = subprocess.run(["bash", "-n", "-c", code], capture_output=True, text=True)
    assert syntax.returncode == 0, f"README.md line {line}: {syntax.stderr}"
    done = subprocess.run(
        ["bash", "-c", runnable(code)],
        cwd=tmp_path,
        env=as_after_make_demo(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"README.md line {line}:\n{done.stdout}\n{done.stderr}"


def test_readme_has_code_blocks() -> None:
    assert blocks({"python"}) and shell_blocks()
