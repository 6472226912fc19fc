"""The house rules on code layout, checked on every run so they stay true: small modules
(about 600 lines at most) and classes (about 300), and no private name imported from another
module (a name shared across modules is public in its module, which may itself be private)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    ROOT / "hitl_async",
    *sorted((ROOT / "drivers").glob("*/hitl_async_*")),
    ROOT / "benchmarks",
]
MODULE_LINES = 620
CLASS_LINES = 310


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in pkg.rglob("*.py"))


def _label(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", _sources(), ids=_label)
def test_modules_and_classes_stay_small(path: Path) -> None:
    text = path.read_text()
    lines = text.count("\n")
    assert lines <= MODULE_LINES, f"{_label(path)} has {lines} lines; split it by concept"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno
            assert size <= CLASS_LINES, (
                f"{_label(path)}: class {node.name} has {size} lines; move a group of its "
                "methods to a module of their own"
            )


def _ours(module: str) -> bool:
    return module.split(".")[0] in ("hitl_async", "benchmarks") or module.startswith("hitl_async_")


def _is_module(package: str, name: str) -> bool:
    base = ROOT / "drivers" / package.split(".")[0].removeprefix("hitl_async_")
    for root in (ROOT, base):
        folder = root.joinpath(*package.split("."))
        if (folder / f"{name}.py").exists() or (folder / name / "__init__.py").exists():
            return True
    return False


def test_no_private_name_is_imported_from_another_module() -> None:
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and _ours(node.module):
                for alias in node.names:
                    name = alias.name
                    if name.startswith("_") and not name.startswith("__"):
                        if _is_module(node.module, name):  # a private module: allowed
                            continue
                        found.append(f"{_label(path)}: from {node.module} import {name}")
    assert not found, "private names imported across modules:\n" + "\n".join(found)
