"""The reliability suite: every test in this folder is marked `reliability`.

Run it alone with `pytest -m reliability` (or skip it with `-m "not reliability"`); a plain
`pytest`, which CI runs, includes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The hook sees every collected item of the session, not only this folder's.
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.reliability)
