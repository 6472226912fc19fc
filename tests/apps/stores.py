"""A store description that test processes can share."""

from __future__ import annotations

from typing import Any


class SharedStore:
    """A store several processes can open: its URL, driver options, and a saver for the test."""

    def __init__(self, kind: str, url: str, options: dict[str, Any]) -> None:
        self.kind = kind
        self.url = url
        self.options = options

    def connect(self) -> Any:
        from hitl_async import connect

        return connect(self.url, **self.options)
