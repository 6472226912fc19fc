"""How to run this program again, as typed in the user's shell: every command `hitl` and the demo
print must work when pasted where they were run (e.g. `.venv/bin/hitl ...` after `make demo`,
when the virtualenv's `bin` is not on PATH)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys

__all__ = ["program", "python_command", "shown_path"]

_MODULE_MAINS = {"hitl_async.cli.__main__": "hitl_async.cli", "hitl_async.cli": "hitl_async.cli"}


def shown_path(path: str) -> str:
    """`path` as a shell word: relative to the working directory when it lies inside it (with
    a `/`, so the shell does not search PATH), else absolute."""
    full = os.path.abspath(path)
    try:
        rel = os.path.relpath(full)
    except ValueError:  # another drive (Windows)
        rel = full
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return shlex.quote(full)
    return shlex.quote(rel if os.sep in rel else f".{os.sep}{rel}")


def python_command(*args: str) -> str:
    """The running interpreter with `args` (`.venv/bin/python -m x`), unless plain `python`
    on PATH is that interpreter."""
    found = shutil.which("python")
    # The same directory, not the same file: a virtualenv's python is a link to the base one.
    same = found is not None and _real_dir(found) == _real_dir(sys.executable)
    python = "python" if same else shown_path(sys.executable)
    return " ".join([python, *args])


def program() -> str:
    """How to run `hitl` again: `hitl` when PATH finds this very script, else its path (as
    invoked: `.venv/bin/hitl`), or `PYTHON -m hitl_async.cli` when run as a module."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    module = _MODULE_MAINS.get(getattr(spec, "name", "") or "")
    if module is not None:
        return python_command("-m", module)
    script = sys.argv[0] if sys.argv else ""
    name = os.path.basename(script)
    if not script or not name.startswith("hitl"):
        return "hitl"  # called in-process (hitl_async.cli.main from Python)
    found = shutil.which(name)
    if found is not None and _same(found, script):
        return name
    return shown_path(script)


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _real_dir(path: str) -> str:
    return os.path.realpath(os.path.dirname(os.path.abspath(path)))
