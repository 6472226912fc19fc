"""Output of the `hitl` command: JSON for scripts (`--json`), rich tables and lines for people."""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import enum
import json
import os
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hitl_async.cli._inspect import ThreadView, Undecodable
from hitl_async.inbox import PendingInterrupt
from hitl_async.types import Command, Interrupt, Send

__all__ = [
    "compact",
    "console",
    "emit_json",
    "history_table",
    "inbox_table",
    "jsonable",
    "print_event",
    "print_thread",
    "threads_table",
]


def _is_message(value: Any) -> bool:
    return type(value).__module__.startswith("langchain_core.messages") and isinstance(
        getattr(value, "type", None), str
    )


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data: datetimes as ISO text, sets and tuples as lists, dataclasses
    and pydantic models as objects, bytes as base64; anything else as its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Interrupt):
        return {"id": value.id, "value": jsonable(value.value)}
    if isinstance(value, Send):
        return {"send": value.node, "arg": jsonable(value.arg)}
    if isinstance(value, Command):
        return {"command": jsonable({"resume": value.resume, "update": value.update})}
    if isinstance(value, Undecodable):
        return str(value)
    if hasattr(value, "_asdict") and isinstance(value, tuple):
        named: Any = value  # a NamedTuple
        return jsonable(named._asdict())
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [jsonable(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if _is_message(value):  # langchain-core: its role first, then the fields that are set
        try:
            fields = value.model_dump(mode="json", exclude_defaults=True)
        except Exception:
            return repr(value)
        return {"type": value.type, **fields}
    if hasattr(value, "model_dump"):
        try:
            return value.model_dump(mode="json")
        except Exception:
            return repr(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return repr(value)


def compact(value: Any, limit: int | None = None) -> str:
    """One-line JSON of `value`, cut to `limit` characters."""
    text = json.dumps(jsonable(value), ensure_ascii=False)
    if limit is not None and len(text) > limit:
        return text[: max(limit - 1, 0)] + "…"
    return text


def emit_json(data: Any) -> None:
    """Print `data` as JSON on stdout (the `--json` output)."""
    sys.stdout.write(json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def console(*, stderr: bool = False) -> Console:
    """A console for people; piped output is not wrapped at 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or "COLUMNS" in os.environ else 160
    return Console(file=stream, highlight=False, soft_wrap=False, width=width)


def when(iso: str | None) -> str:
    """`2026-11-24T09:33:10.955979+00:00` as `2026-11-24 09:33:10Z`."""
    if not iso:
        return "-"
    return iso[:19].replace("T", " ") + ("Z" if iso.endswith("+00:00") else "")


def deadline_text(deadline: float | None, now: float | None = None) -> str:
    """A deadline (epoch seconds) with how far away it is."""
    if deadline is None:
        return "-"
    moment = _dt.datetime.fromtimestamp(deadline, _dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    left = deadline - (time.time() if now is None else now)
    if left <= 0:
        return f"{moment} (overdue)"
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= seconds:
            return f"{moment} (in {int(left // seconds)}{unit})"
    return f"{moment} (in {int(left)}s)"


def print_event(out: Console, event: Any) -> None:
    """One `updates` stream event as `node: {...}` lines."""
    if not isinstance(event, dict):
        out.print(Text(f"  {compact(event, 200)}"))
        return
    for node, update in event.items():
        if node != "__interrupt__":  # interrupts are summed up once the run ends
            out.print(Text(f"  {node}: {compact(update, 200)}"))


def print_thread(out: Console, view: ThreadView) -> None:
    """The `show` output: where the thread is, its values, and what it waits for."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("thread", view.thread_id)
    grid.add_row("status", view.status)
    grid.add_row("checkpoint", f"{view.checkpoint_id}  (step {view.step}, {when(view.created_at)})")
    grid.add_row("next", ", ".join(view.next) or "-")
    out.print(grid)
    out.print(Text("values", style="bold"))
    out.print_json(json.dumps(jsonable(view.values), ensure_ascii=False))
    for t in view.tasks:
        if t.error and not t.done:
            out.print(Text(f"error in {t.name}: {t.error}", style="red"))
    if view.interrupts:
        out.print(Text("interrupts", style="bold"))
        for i in view.interrupts:
            due = "" if i.deadline is None else f"  deadline {deadline_text(i.deadline)}"
            out.print(Text(f"  {i.id}  {i.node}  {compact(i.value, 300)}{due}"))


def inbox_table(items: Sequence[PendingInterrupt]) -> Table:
    """Pending interrupts: thread, interrupt id, node, value, created, deadline."""
    table = Table(title=f"{len(items)} pending interrupt(s)", title_justify="left")
    table.add_column("thread", no_wrap=True)
    table.add_column("interrupt id", no_wrap=True)
    table.add_column("node")
    table.add_column("value", overflow="fold", max_width=80)
    table.add_column("created")
    table.add_column("deadline")
    for p in items:
        table.add_row(
            p.thread_id,
            p.interrupt_id,
            p.node,
            compact(p.value, 120) if p.damaged is None else f"DAMAGED: {p.damaged}",
            when(p.created_at),
            deadline_text(p.deadline),
        )
    return table


def history_table(views: Iterable[ThreadView]) -> Table:
    """A thread's checkpoints, newest first."""
    table = Table()
    table.add_column("step", no_wrap=True)
    table.add_column("checkpoint", no_wrap=True)
    for name in ("created", "source", "next", "interrupts"):
        table.add_column(name)
    table.add_column("values", overflow="fold", max_width=80)
    for v in views:
        table.add_row(
            "-" if v.step is None else str(v.step),
            v.checkpoint_id or "-",
            when(v.created_at),
            str(v.metadata.get("source", "-")),
            ", ".join(v.next) or "-",
            str(len(v.interrupts)),
            compact(v.values, 120),
        )
    return table


def threads_table(views: Iterable[ThreadView]) -> Table:
    """Threads with where each one is."""
    table = Table()
    table.add_column("thread", no_wrap=True)
    for name in ("status", "next", "interrupts", "step", "updated"):
        table.add_column(name)
    for v in views:
        table.add_row(
            v.thread_id,
            v.status,
            ", ".join(v.next) or "-",
            str(len(v.interrupts)),
            "-" if v.step is None else str(v.step),
            when(v.created_at),
        )
    return table
