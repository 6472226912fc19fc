"""A graph whose node makes its own checkpoint store vanish (for the `hitl` CLI's "store lost"
exit code): `CLI_VANISH` names what to delete, as the store-loss tests do behind the savers'
backs. `sqlite:PATH` deletes the file and its -wal/-shm, `postgres:URL|SCHEMA` drops the schema,
`redis:URL|PREFIX` deletes every key of the prefix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph, connect


class State(TypedDict, total=False):
    n: int


async def _vanish() -> None:
    kind, _, where = os.environ["CLI_VANISH"].partition(":")
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(where + suffix).unlink(missing_ok=True)
        return
    url, _, name = where.rpartition("|")
    if kind == "postgres":
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        finally:
            await conn.close()
        return
    other = connect(url, prefix=name)
    try:
        await other.destroy()
    finally:
        await other.aclose()


async def vanish(state: State) -> dict[str, Any]:
    await _vanish()
    return {"n": state.get("n", 0) + 1}


def make_builder() -> StateGraph:
    builder = StateGraph(State)
    builder.add_node("vanish", vanish)
    builder.add_edge(START, "vanish")
    builder.add_edge("vanish", END)
    return builder


vanishing = make_builder()
