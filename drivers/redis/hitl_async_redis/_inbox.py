"""The inbox index on Redis (`InboxStore`): pending interrupts across threads in the zset
`P:inbox` (lexical order of (created_at, thread_id, interrupt_id)), their entries in
`P:inbox:data`, deadlines in `P:inbox:due`, and each thread's members in `P:{T}:inbox`.
Commits and pending writes replace a thread's entries in their own script (`inbox_args`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hitl_async.checkpoint.base import InboxEntry
from hitl_async.checkpoint.capabilities import InboxQuery, InboxStore
from hitl_async_redis import _scripts
from hitl_async_redis._codec import decode_entry, encode_entry, lex_member, score, text, untext
from hitl_async_redis._connection import RedisConnection

__all__ = ["RedisInbox", "check_inbox", "inbox_args"]


def check_inbox(thread_id: str, inbox: Sequence[InboxEntry]) -> None:
    """`ValueError` if an entry is of another thread than `thread_id`."""
    for e in inbox:
        if e.thread_id != thread_id:
            raise ValueError(
                f"inbox entry {e.interrupt_id!r} is of thread {e.thread_id!r}, not {thread_id!r}"
            )


def inbox_args(thread_id: str, inbox: Sequence[InboxEntry] | None) -> list[Any]:
    """`[n, (member, data, deadline or "")*n]`; n = -1 keeps the inbox as it is."""
    if inbox is None:
        return [-1]
    check_inbox(thread_id, inbox)
    args: list[Any] = [len(inbox)]
    for e in inbox:
        deadline = e.deadline
        due = b"" if deadline is None or math.isnan(deadline) else score(deadline)
        args += [lex_member(e.created_at, e.thread_id, e.interrupt_id), encode_entry(e), due]
    return args


def _inbox_entry(member: bytes, data: bytes) -> InboxEntry:
    """The entry stored as `data`; a damaged one as an entry with `damaged` set and the ids its
    index member names (hex of created_at, thread id, interrupt id)."""
    try:
        return decode_entry(data)
    except Exception as exc:
        try:
            created, thread, interrupt = (
                untext(bytes.fromhex(p)) for p in member.decode().split(".")
            )
        except ValueError:  # (not hex, not three parts)
            created = thread = interrupt = ""
        return InboxEntry(
            thread_id=thread,
            interrupt_id=interrupt,
            checkpoint_ns="",
            node="",
            value=b"",
            created_at=created,
            damaged=f"its stored entry cannot be read ({type(exc).__name__}: {exc})",
        )


class RedisInbox(RedisConnection, InboxStore):
    """Reads of the inbox index (never of checkpoints)."""

    async def list_inbox(self, query: InboxQuery = InboxQuery()) -> list[InboxEntry]:  # noqa: B008
        """Pending interrupts from the index keys only (never checkpoints); one EVALSHA."""
        thread_id, node, graph = query.thread_id, query.node, query.graph
        due_before, after, limit = query.due_before, query.after, query.limit
        if limit <= 0 or (due_before is not None and not due_before > -math.inf):
            return []  # (NaN or -inf: no deadline is before it)
        keys = self._inbox_keys(self._base(thread_id or ""))
        keys = keys[1:] + ([keys[0]] if thread_id is not None else [])
        args = [
            self.prefix,
            b"" if after is None else lex_member(*after).encode(),
            limit,
            b"0" if node is None else b"1",
            text(node or ""),
            b"0" if graph is None else b"1",
            text(graph or ""),
            b"" if due_before is None else score(due_before),
        ]
        reply = await self._run(_scripts.LIST_INBOX, keys, args)
        return [_inbox_entry(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]
