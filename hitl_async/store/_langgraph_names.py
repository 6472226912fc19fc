"""What the LangGraph-named stores (`hitl_async.store.postgres.PostgresStore`, ...) share."""

from __future__ import annotations

from typing import Any

__all__ = ["no_deserializer", "pool_options"]


def no_deserializer(deserializer: object, name: str) -> None:
    """Refuse LangGraph's `deserializer=`: values go through the allow-listed serializer."""
    if deserializer is not None:
        raise TypeError(
            f"{name}(deserializer=...) is not supported: hitl-async stores values as JSON "
            "(or its allow-listed msgpack) and never runs code to read them back"
        )


def pool_options(pool_config: dict[str, Any] | None) -> dict[str, Any]:
    """The driver's pool options from LangGraph's `pool_config` (`min_size`, `max_size`)."""
    config = dict(pool_config or {})
    return {k: config[k] for k in ("min_size", "max_size") if config.get(k) is not None}
