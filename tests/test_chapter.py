"""The chapter's five examples, run as scripts: their output matches what LangGraph 1.2.22 prints
(our `Interrupt` repr has no `response_schema` field, by design)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "chapter"
ID = "[0-9a-f]{32}"


def run_example(name: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout.splitlines()


def test_ex1_basic_approval() -> None:
    lines = run_example("ex1_basic_approval.py")
    assert len(lines) == 5
    value = "{'question': 'Approve transfer for $500.00?', 'options': ['yes', 'no']}"
    match = re.fullmatch(
        re.escape(f"{{'__interrupt__': (Interrupt(value={value}, id='")
        + f"({ID})"
        + re.escape("'),)}"),
        lines[0],
    )
    assert match, lines[0]
    assert lines[1] == value
    assert lines[2] == match.group(1)
    assert lines[3:] == [
        "{'request_approval': {'decision': 'approved'}}",
        "{'execute': {'action': 'APPROVED: transfer'}}",
    ]


def test_ex2_sequential_interrupts() -> None:
    assert run_example("ex2_sequential_interrupts.py") == ["True"]


def test_ex3_resume_by_id() -> None:
    lines = run_example("ex3_resume_by_id.py")
    assert len(lines) == 2
    assert re.fullmatch(f"Legal interrupt id: {ID}", lines[0]), lines[0]
    assert lines[1] == "True True"


@pytest.mark.parametrize(
    ("name", "final"),
    [
        ("ex4_approval_chain.py", "EXECUTED: vendor-contract"),
        ("ex5_goto_after_interrupt.py", "[PUBLISHED] Improved draft text"),
    ],
)
def test_ex4_ex5_final_print(name: str, final: str) -> None:
    assert run_example(name) == [final]
