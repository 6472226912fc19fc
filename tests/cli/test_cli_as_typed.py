"""Every command `make demo`, the demo and `hitl` print works as typed from the repository root
of a fresh clone, where `make` left the virtualenv in `.venv` and nobody activated it (`hitl` is
not on PATH: the commands say `.venv/bin/hitl`).

The clone is a scratch directory with the repository's Makefile and the test run's virtualenv
at `.venv`. `make demo` runs with `-o .venv/.installed` (the virtualenv is not rebuilt: this test
must not reinstall the package under test); every command it and `hitl` then print is run by
bash in that directory, exactly as printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The repository root as `make demo` leaves it (Makefile, pyproject files, `.venv`)."""
    root = tmp_path / "clone"
    root.mkdir()
    for name in ("Makefile", "pyproject.toml", "drivers"):
        (root / name).symlink_to(ROOT / name)
    (root / ".venv").symlink_to(VENV_BIN.parent, target_is_directory=True)
    shutil.copy(ROOT / "tests" / "apps" / "cli_app.py", root / "approvals.py")
    return root


def shell_env() -> dict[str, str]:
    """A shell where the virtualenv is not activated: its bin is not on PATH."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN]
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "HITL_STORE", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL")
    }
    return {**environ, "PATH": os.pathsep.join(path), "COLUMNS": "200"}


def typed(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`command` run by bash in `cwd`, exactly as printed."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=shell_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )


def works(command: str, cwd: Path) -> str:
    done = typed(command, cwd)
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def test_hitl_is_not_on_the_path_of_this_shell(clone: Path) -> None:
    assert typed("command -v hitl", clone).returncode != 0
    assert typed("command -v .venv/bin/hitl", clone).returncode == 0


def test_make_demo_prints_commands_that_work_as_typed(clone: Path) -> None:
    out = works("make -o .venv/.installed demo", clone)
    assert out.rstrip().endswith("Outcome: EXECUTED: vendor-contract")
    [printed] = re.findall(r"leave this one and run: (.+)\)$", out, re.M)
    assert printed.startswith(".venv/bin/hitl demo --store sqlite:///hitl.db --thread demo-")
    assert (clone / "hitl.db").exists()

    paused = works(".venv/bin/hitl demo --stop-at-pause", clone)
    [resume] = re.findall(r"^  (\.venv/bin/hitl demo .+)$", paused, re.M)
    assert re.sub(r"demo-\w+", "T", resume) == re.sub(r"demo-\w+", "T", printed)
    assert works(resume, clone).rstrip().endswith("Outcome: EXECUTED: vendor-contract")
    done = typed(printed, clone)  # make demo's thread was answered there: nothing waits
    assert done.returncode == 4 and "is not waiting for anyone" in done.stdout


def test_readme_cli_commands_work_as_typed_after_make_demo(clone: Path) -> None:
    works("make -o .venv/.installed demo", clone)
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The `hitl` command") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    assert lines and all(line.startswith(".venv/bin/hitl ") for line in lines if line)
    for line in filter(None, lines):
        works(line, clone)


def test_run_and_its_refusal_print_commands_that_work_as_typed(clone: Path) -> None:
    run = ".venv/bin/hitl run approvals:builder --thread t --input"
    out = works(f"""{run} '{{"item": "pen", "amount": 2}}'""", clone)
    [answer] = re.findall(r"^answer with: (.+)$", out, re.M)
    assert answer.startswith(".venv/bin/hitl resume approvals:builder --thread t --store ")
    again = typed(f"""{run} '{{"item": "car", "amount": 9}}'""", clone)
    assert again.returncode == 4
    resume, restart = re.findall(r"`([^`]+)`", again.stderr)
    assert resume == answer
    assert "Approve mug" in works(
        restart.replace("JSON", """'{"item": "mug", "amount": 3}'"""), clone
    )
    assert "approved: mug" in works(answer.replace("JSON", "'\"yes\"'"), clone)
