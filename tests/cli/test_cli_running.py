"""`hitl run` and `hitl resume` as strict as the library, on every store: a run on a thread paused
on an interrupt is refused (exit 4) naming the interrupt and the commands that answer it or
start over, and those printed commands work as typed; resume errors say what to run instead,
in `hitl` terms (never `stream(None, config)` or `Command(resume=...)`)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from test_cli import APP, TESTS, Store, fails, hitl, ok, ok_json
from test_cli import store as store  # the fixture: a fresh SQLite, PostgreSQL or Redis store

PYTHON_ADVICE = ("stream(None", "config)", "Command(resume", "resume={")


def run_as_typed(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A printed command run by a shell, exactly as printed, with the PATH it was printed
    under (the test app on PYTHONPATH)."""
    environ = {k: v for k, v in os.environ.items() if k != "HITL_STORE"}
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env={**environ, "PYTHONPATH": str(TESTS), "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def quoted(line: str) -> list[str]:
    """The commands a message quotes between backticks."""
    return re.findall(r"`([^`]+)`", line)


def test_run_on_a_paused_thread_is_refused(store: Store, tmp_path: Path) -> None:
    s = store.flags
    first = ok_json(
        "run", f"{APP}:builder", "-t", "p", "--input", '{"item": "pen", "amount": 2}', *s,
        cwd=tmp_path,
    )  # fmt: skip
    [asked] = first["interrupts"]
    before = ok_json("history", "-t", "p", *s, cwd=tmp_path)

    line = fails(
        4, "run", f"{APP}:builder", "-t", "p", "--input", '{"item": "car", "amount": 9}', *s,
        cwd=tmp_path,
    )  # fmt: skip
    assert "thread 'p' is paused on an interrupt" in line
    assert asked["id"] in line and "Approve pen for $2.00?" in line
    assert "--restart" in line and not any(a in line for a in PYTHON_ADVICE)
    # continuing without input is refused the same way (it would ask the question again)
    assert "is paused" in fails(4, "run", f"{APP}:builder", "-t", "p", *s, cwd=tmp_path)
    assert ok_json("history", "-t", "p", *s, cwd=tmp_path) == before  # nothing changed

    answer, restart = quoted(line)
    assert " resume " in answer and answer.endswith("--value JSON")
    answered = run_as_typed(answer.replace("JSON", "'\"yes\"'"), tmp_path)
    assert answered.returncode == 0, answered.stderr
    assert "done:" in answered.stdout and "approved: pen" in answered.stdout

    again = ok_json(
        "run", f"{APP}:builder", "-t", "p", "--input", '{"item": "cup", "amount": 1}', *s,
        cwd=tmp_path,
    )  # fmt: skip
    assert again["status"] == "paused"  # a finished thread takes new input as before
    restarted = run_as_typed(
        restart.replace("JSON", shlex.quote('{"item": "mug", "amount": 3}')), tmp_path
    )
    assert restarted.returncode == 0, restarted.stderr
    assert "Approve mug for $3.00?" in restarted.stdout
    shown = ok_json("show", "-t", "p", *s, cwd=tmp_path)
    assert shown["status"] == "paused" and shown["values"]["item"] == "mug"
    assert [i["value"] for i in shown["interrupts"]] == [{"question": "Approve mug for $3.00?"}]


def test_run_refusal_names_every_pending_interrupt(tmp_path: Path) -> None:
    s = ["--store", f"sqlite:///{tmp_path / 'two.db'}"]
    first = ok_json("run", f"{APP}:two_reviews", "-t", "two", "--input", "{}", *s, cwd=tmp_path)
    ids = sorted(i["id"] for i in first["interrupts"])
    assert len(ids) == 2
    line = fails(4, "run", f"{APP}:two_reviews", "-t", "two", "--input", "{}", *s, cwd=tmp_path)
    assert "paused on 2 interrupts" in line and all(i in line for i in ids)
    assert "--id ID" in quoted(line)[0]


def test_restart_needs_input(tmp_path: Path) -> None:
    s = ["--store", f"sqlite:///{tmp_path / 'r.db'}"]
    line = fails(2, "run", f"{APP}:builder", "-t", "x", "--restart", *s, cwd=tmp_path)
    assert "--restart" in line and "--input" in line
    assert not (tmp_path / "r.db").exists() or "x" not in ok("threads", *s, cwd=tmp_path)


def test_resume_errors_say_what_to_run(tmp_path: Path) -> None:
    s = ["--store", f"sqlite:///{tmp_path / 'e.db'}"]
    ok("run", f"{APP}:two_reviews", "-t", "two", "--input", "{}", *s, cwd=tmp_path)
    line = fails(
        4, "resume", f"{APP}:two_reviews", "-t", "two", "--value", '"ok"', *s, cwd=tmp_path
    )
    assert "2 pending interrupts" in line and "--id ID" in line
    assert not any(a in line for a in PYTHON_ADVICE)
    pending = ok_json("inbox", "-t", "two", *s, cwd=tmp_path)
    by_id = quoted(line)[0].replace("--id ID", f"--id {pending[0]['interrupt_id']}")
    done = run_as_typed(by_id.replace("JSON", "'\"ok\"'"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(ok_json("inbox", "-t", "two", *s, cwd=tmp_path)) == 1

    ghost = fails(3, "resume", f"{APP}:builder", "-t", "ghost", "--value", "1", *s, cwd=tmp_path)
    assert "does not exist" in ghost and " run " in quoted(ghost)[0]
    assert not any(a in ghost for a in PYTHON_ADVICE)

    ok(
        "run",
        f"{APP}:builder",
        "-t",
        "fin",
        "--input",
        '{"item": "a", "amount": 1}',
        *s,
        cwd=tmp_path,
    )
    ok("resume", f"{APP}:builder", "-t", "fin", "--value", '"no"', *s, cwd=tmp_path)
    finished = fails(4, "resume", f"{APP}:builder", "-t", "fin", "--value", "1", *s, cwd=tmp_path)
    assert "has no pending interrupt; it has finished" in finished
    assert "--input JSON" in quoted(finished)[0] and not any(a in finished for a in PYTHON_ADVICE)


def test_printed_answer_command_works_as_typed(tmp_path: Path) -> None:
    s = ["--store", f"sqlite:///{tmp_path / 'a.db'}"]
    out = ok("run", f"{APP}:graph", "-t", "b", "--input", '{"item": "desk", "amount": 80}', *s,
             cwd=tmp_path)  # fmt: skip
    [line] = [x for x in out.splitlines() if x.startswith("answer with: ")]
    command = line.removeprefix("answer with: ").replace("JSON", "'\"yes\"'")
    done = run_as_typed(command, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "approved: desk" in done.stdout
    assert hitl("show", "-t", "b", *s, cwd=tmp_path).returncode == 0
