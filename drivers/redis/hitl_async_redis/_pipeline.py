"""Script calls of many callers in one round trip: a non-transactional pipeline of EVALSHA.

`ScriptPipeline.execute(calls)` sends every call over one pooled connection in one write and
reads the replies in order: each script runs atomically on its own (no MULTI), and each call
gets its own reply or its own error (`ResponseError`, e.g. a Lua error or `NOSCRIPT`). Calls
refused with `NOSCRIPT` (after `SCRIPT FLUSH`, a restart or a failover) are sent again behind a
`SCRIPT LOAD` of their script in the next round trip; a script the server refuses right after
loading it gives up with that error, as one reload is all a single call used to try.

Why not redis-py's `Pipeline` or `execute_command`: per command they pack the arguments in
Python with a byte join per argument (quadratic in the argument count; a commit has dozens) and
run each reply through response callbacks and observability hooks. The driver only sends
EVALSHA and SCRIPT LOAD with arguments it encoded itself, so it packs RESP in one pass here and
reads replies with the connection's own parser (hiredis when it is installed). The pool, the
connection (connect, TLS, auth, timeouts, disconnect on errors) and the client's `Retry` policy
(a dropped connection is retried on a new one, as `execute_command` does) are redis-py's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

from hitl_async_redis._scripts import Script

_Packer = Callable[[Sequence[Any]], bytes]
_hiredis_pack: _Packer | None
try:  # C packer of the `hiredis` extra: about 2.5x faster than `_pack` on a commit
    from hiredis import pack_command

    _hiredis_pack = cast(_Packer, pack_command)
except ImportError:  # pragma: no cover - depends on the installation
    _hiredis_pack = None

__all__ = ["Call", "ScriptPipeline"]

Call = tuple[Script, Sequence[Any], Sequence[Any]]
"""One EVALSHA: the script, its KEYS and its ARGV."""

_PENDING: Any = object()  # an outcome not read yet


class ScriptPipeline:
    """Runs batches of script calls of one client (one event loop), one round trip each."""

    def __init__(self, client: Redis) -> None:
        self.pool = client.connection_pool
        kwargs = self.pool.connection_kwargs
        self._encoding: str = kwargs.get("encoding", "utf-8")
        self._errors: str = kwargs.get("encoding_errors", "strict")
        get_encoder: Callable[[], Any] = self.pool.get_encoder  # (untyped in redis-py)
        self._encode: Callable[[Any], bytes] = get_encoder().encode
        utf8 = self._encoding.lower().replace("-", "").replace("_", "") == "utf8"
        self._fast = _hiredis_pack if utf8 and self._errors == "strict" else None
        self.calls = 0
        """How many calls were executed (for tests and benchmarks)."""
        self.round_trips = 0
        """How many pipelines were written (for tests and benchmarks)."""

    async def execute(self, calls: Sequence[Call]) -> list[Any]:
        """One outcome per call, in order: the script's reply, or the exception it got.

        A `ResponseError` reply (a Lua error, `NOSCRIPT` that a reload did not cure, `OOM`,
        `READONLY`) is that call's outcome only. When the connection fails (refused, dropped,
        timed out, `LOADING`), the client's `Retry` policy resends, on a new connection, the
        calls whose replies were not read yet (as redis-py resends a single command); once it
        gives up, those calls get the error and the others keep their replies. Only a failure
        to get a connection at all raises.
        """
        self.calls += len(calls)
        outcomes: list[Any] = [_PENDING] * len(calls)
        get_connection = cast(Callable[[], Awaitable[Any]], self.pool.get_connection)
        conn = await get_connection()
        try:
            await conn.retry.call_with_retry(
                lambda: self._attempt(conn, calls, outcomes),
                lambda _error: conn.disconnect(),
            )
        except Exception as exc:
            await conn.disconnect(nowait=True)  # never hand back a connection with replies unread
            for i, outcome in enumerate(outcomes):
                if outcome is _PENDING:
                    outcomes[i] = exc
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        finally:
            await self.pool.release(conn)
        return outcomes

    async def _attempt(
        self, conn: AbstractConnection, calls: Sequence[Call], outcomes: list[Any]
    ) -> None:
        """Send the calls still pending, read their replies; reload scripts on NOSCRIPT."""
        loads: dict[str, Script] = {}  # to load ahead of this round trip's calls
        loaded: set[str] = set()  # loaded by this attempt: a second NOSCRIPT is final
        while True:
            parts = [self._packed((b"SCRIPT", b"LOAD", s.source)) for s in loads.values()]
            sent: list[int] = []
            for i, outcome in enumerate(outcomes):
                if outcome is not _PENDING:
                    continue
                script, keys, args = calls[i]
                try:
                    parts.append(self._packed((b"EVALSHA", script.sha, len(keys), *keys, *args)))
                except Exception as exc:  # an argument redis-py refuses too: that call fails
                    outcomes[i] = exc
                    continue
                sent.append(i)
            if not sent:
                return
            self.round_trips += 1
            await conn.send_packed_command(b"".join(parts))
            load_errors: dict[str, ResponseError] = {}
            for sha in loads:
                try:
                    await conn.read_response()
                except ResponseError as exc:
                    load_errors[sha] = exc
            loaded.update(loads)
            loads = {}
            for i in sent:
                try:
                    outcomes[i] = await conn.read_response()
                except NoScriptError as exc:
                    script = calls[i][0]
                    if script.sha in loaded:
                        outcomes[i] = load_errors.get(script.sha, exc)
                    else:
                        loads[script.sha] = script  # stays pending: resent after a load
                except ResponseError as exc:
                    outcomes[i] = exc
            if not loads:
                return

    def _packed(self, command: Sequence[Any]) -> bytes:
        """The RESP encoding of one command."""
        fast = self._fast
        if fast is not None:
            try:
                return fast(command)
            except TypeError:  # (a type hiredis does not take, e.g. bytearray)
                pass
        parts: list[bytes] = []
        self._pack(parts, command)
        return b"".join(parts)

    def _pack(self, out: list[bytes], command: Sequence[Any]) -> None:
        """Append the RESP encoding of `command` (bytes, str, int; others as redis-py does)."""
        append = out.append
        append(b"*%d\r\n" % len(command))
        for arg in command:
            kind = arg.__class__
            if kind is bytes:
                data = arg
            elif kind is str:
                data = arg.encode(self._encoding, self._errors)
            elif kind is int:
                data = b"%d" % arg
            else:  # floats, memoryviews, ...; bools are refused like redis-py refuses them
                data = self._encode(arg)
            if len(data) < 4096:
                append(b"$%d\r\n%b\r\n" % (len(data), data))
            else:  # (not copied twice)
                append(b"$%d\r\n" % len(data))
                append(data)
                append(b"\r\n")
