"""The Redis driver's key names (`KeyLayout`).

`P` = the `prefix` option, default "hitl"; `T` = "t" + hex(UTF-8 thread id);
`N` = hex(UTF-8 namespace), "" for the root namespace; `Q`, `R` = hex of a queue name, a run
request id). Hex encoding keeps hostile ids (quotes, `*`, `:`, braces, newlines, unicode) out
of key syntax, glob patterns and hash tags; the thread part is the hash tag `{T}`, so all keys
of one thread live in one Redis Cluster slot:

    P:threads           zset   thread_id -> expiry in ms since the epoch (+inf without `ttl`)
    P:{T}:head          hash   N -> checkpoint id of the head
    P:{T}:ns            set    every N the thread has keys for
    P:{T}:cp:N          hash   checkpoint_id -> record (`_codec.encode_record`)
    P:{T}:idx:N         zset   checkpoint_id, score 0 (ZREVRANGEBYLEX: newest first, `before`)
    P:{T}:blobs:N       hash   lp(channel) + version -> blob bytes
    P:{T}:w:N           hash   lp(checkpoint_id) + lp(task_id) + idx -> write (msgpack)
    P:{T}:wi:N          zset   the fields of P:{T}:w:N, score 0 (a checkpoint's writes are one
                               ZRANGEBYLEX range: they share the prefix lp(checkpoint_id))

Coordination (leases, the inbox index, the run queue):

    P:{T}:lease         hash   owner, token, expires (ms, Redis TIME), graph, released (0/1).
                               Never deleted but by `destroy()`: `token` only grows (HINCRBY).
    P:leases            zset   T -> expires, for unreleased leases only (`expired_leases`)
    P:inbox             zset   M, score 0: the inbox index in (created_at, thread_id,
                               interrupt_id) order, M = `_codec.lex_member(...)` of that triple
                               (ZRANGEBYLEX gives the order, `(M` the keyset page after M)
    P:inbox:data        hash   M -> entry (`_codec.encode_entry`: node and graph readable by Lua)
    P:inbox:due         zset   M -> deadline in seconds (entries with a deadline only)
    P:{T}:inbox         set    the thread's members M (what a replace or delete removes)
    P:run:R             hash   one run request (`_codec.request_fields`); claim in ms
    P:runs:Q            zset   M = lex_member(created_at, id), score 0: the queue's pending
                               (queued or running) requests, oldest first
    P:{T}:runs          set    R of the thread's pending requests (any queue)
    P:q:Q               stream wake-ups of queue Q (MAXLEN ~1000), read with XREAD BLOCK

plus the pub/sub channel `P:changes` (message: a thread id) published by `commit`,
`put_writes`, `release_lease` and `delete_thread`.

`lp(s)` is `len(s) ":" s` over bytes. `P:threads`, `P:leases`, `P:inbox*`, `P:run*` and
`P:q:*` are outside a thread's slot: with Redis Cluster they must be sharded (or hash-tagged
together) before this driver supports clusters.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from hitl_async_redis._codec import text

__all__ = ["THREAD_KEYS_CACHED", "KeyLayout", "ThreadKeys", "glob_escape"]

_SUFFIXES = ("cp", "idx", "blobs", "w", "wi")
_GLOB_SPECIAL = frozenset("*?[]\\")

THREAD_KEYS_CACHED = 4096
"""Threads whose key names a saver keeps (then it starts over)."""


def glob_escape(value: str) -> str:
    """`value` matched literally in a SCAN pattern."""
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in value)


class ThreadKeys(NamedTuple):
    """A thread's id and key names, built once per thread: every call of a run needs them."""

    tid: bytes  # text(thread_id)
    base: str  # P:{T}
    member: bytes  # T, the thread's member in P:leases
    lease: str  # P:{T}:lease
    inbox: tuple[str, ...]  # P:{T}:inbox, P:inbox, P:inbox:data, P:inbox:due


class KeyLayout:
    """The key names of a saver's `prefix`, shared by the saver's parts; a thread's are built
    once and cached (every call of a run needs them)."""

    prefix: str
    _thread_keys: dict[str, ThreadKeys]

    def _thread(self, thread_id: str) -> ThreadKeys:
        """The thread's id bytes and key names (cached)."""
        keys = self._thread_keys.get(thread_id)
        if keys is None:
            if len(self._thread_keys) >= THREAD_KEYS_CACHED:
                self._thread_keys.clear()
            tid = text(thread_id)
            tag = f"t{tid.hex()}"
            base = f"{self.prefix}:{{{tag}}}"
            inbox = tuple(self._inbox_keys(base))
            keys = ThreadKeys(tid, base, tag.encode(), f"{base}:lease", inbox)
            self._thread_keys[thread_id] = keys
        return keys

    def _base(self, thread_id: str) -> str:
        return self._thread(thread_id).base

    @property
    def _threads_key(self) -> str:
        return f"{self.prefix}:threads"

    @staticmethod
    def _ns_keys(base: str, nshex: str) -> list[str]:
        """The namespace's `cp idx blobs w wi` keys."""
        return [f"{base}:{s}:{nshex}" for s in _SUFFIXES]

    @property
    def _changes_channel(self) -> str:
        return f"{self.prefix}:changes"

    @property
    def _leases_key(self) -> str:
        return f"{self.prefix}:leases"

    def _inbox_keys(self, base: str) -> list[str]:
        """The thread's member set, then the global index, entry data and deadline keys."""
        p = self.prefix
        return [f"{base}:inbox", f"{p}:inbox", f"{p}:inbox:data", f"{p}:inbox:due"]

    def _read_keys(self, base: str, nshex: str) -> list[str]:
        return self._ns_keys(base, nshex)

    def _load_call(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> tuple[list[str], list[Any]]:
        """KEYS `head cp blobs w wi` and ARGV `ns cid` of the Lua `load_checkpoint`."""
        base = self._base(thread_id)
        nshex = text(checkpoint_ns).hex()
        cp, _idx, blobs, w, wi = self._ns_keys(base, nshex)
        return [f"{base}:head", cp, blobs, w, wi], [nshex, text(checkpoint_id or "")]
