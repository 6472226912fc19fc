"""What the LangGraph-named savers (`hitl_async.checkpoint.sqlite.SqliteSaver`, ...) share.

LangGraph's sync savers have a blocking `setup()`; hitl-async's savers have `async def setup()`
(the engine and `async with` await it). `SyncSetup` makes `setup()` work both ways: called where
no event loop runs it sets up at once (through the sync facade's loop) and returns an awaitable
that does nothing; called inside a running loop it returns the coroutine to await.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from hitl_async import _sync

__all__ = ["SyncSetup", "close_blocking", "no_serde", "require_driver"]


class _Done:
    """An awaitable that is already complete (what a blocking `setup()` returns)."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SyncSetup:
    """Mixin for a saver class: `setup()` blocks when called from synchronous code."""

    def setup(self) -> Any:
        """Create the store's tables/keys if needed (idempotent; savers also do it lazily).

        From synchronous code it runs at once, as LangGraph's `setup()` does; inside a running
        event loop, `await saver.setup()`.
        """
        parent: Any = super()
        if _loop_running():
            return parent.setup()
        _sync.run(parent.setup)
        return _Done()


def close_blocking(saver: Any) -> None:
    """Close `saver` from synchronous code (on the loop the sync API used it from)."""
    _sync.run(saver.aclose)


def no_serde(serde: object, name: str) -> None:
    """Refuse LangGraph's `serde=` argument with the hitl-async way to choose a serializer."""
    if serde is not None:
        raise TypeError(
            f"{name}(serde=...) is not supported: hitl-async chooses the serializer per graph. "
            "Pass it to compile(checkpointer=..., serializer=...) instead (e.g. "
            "hitl_async.crypto.EncryptedSerializer)"
        )


def require_driver(module: str, distribution: str) -> None:
    """Raise ImportError naming the driver distribution when it is not installed."""
    try:
        __import__(module)
    except ImportError as exc:
        raise ImportError(
            f"this saver needs the {distribution} driver: pip install {distribution}"
        ) from exc
