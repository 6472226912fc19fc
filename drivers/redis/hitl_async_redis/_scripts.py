"""The Lua scripts of the Redis driver: one script per operation, each one round trip.

`COMMIT` writes one commit or a whole chain (`commit_many`, with the lease release), and
`ACQUIRE_AND_LOAD` takes a lease and reads the checkpoint a run starts from. Code shared by
several scripts lives in Lua fragments (`lib.lua` in every script; `leases/lease_lib.lua`,
`checkpoints/load_lib.lua`, `runs/runs_lib.lua` where needed), prepended to the scripts' bodies.

The Lua text lives in `.lua` files shipped in the package (`lua/`: `identity.lua` and `lib.lua`
shared by all, then one directory per capability: `checkpoints/`, `leases/`, `inbox/`, `runs/`),
read once at import with `importlib.resources`; this module only puts them together.

Every script runs atomically on the server. Keys of one thread share a hash tag, so each script
touches one cluster slot, except the global `{prefix}:threads` index and the coordination keys
(`leases`, `inbox*`, `run*`, `q:*`; see the `_keys` docstring). Scripts that follow an index to
other keys (expired leases, inbox members, queued requests) build those key names from the
prefix passed in ARGV and the hex ids inside the index members, so Lua never hex-encodes.

Stored checkpoint values are `<n>:<lua part><python part>`: the first `n` bytes after the colon
are a msgpack array the scripts read with `cmsgpack` (`[channel_versions, filter_index,
created_at]`, strings only: Redis' cmsgpack cannot read msgpack `bin`); the rest is opaque to Lua.
Blob fields are `lp(channel) .. version`, write fields `lp(checkpoint_id) .. lp(task_id) .. idx`,
where `lp(s) = #s .. ':' .. s` (length-prefixed, so fields never collide and all writes of one
checkpoint share the prefix `lp(checkpoint_id)`, which a ZRANGEBYLEX range selects).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib.resources import files

__all__ = [
    "ACQUIRE_AND_LOAD",
    "ACQUIRE_LEASE",
    "CLAIM",
    "COMMIT",
    "DELETE_THREAD",
    "ENQUEUE",
    "EXPIRED_LEASES",
    "FINISH",
    "HISTORY",
    "IDENTIFY",
    "LIST_INBOX",
    "LIST_THREADS",
    "LOAD",
    "PRUNE",
    "PUT_WRITES",
    "RELEASE_LEASE",
    "RENEW_CLAIM",
    "RENEW_LEASE",
    "SCRIPTS",
    "STORE_LOST",
    "THREAD_NAMESPACES",
    "WORK_STATE",
    "Script",
]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1 (what EVALSHA is called with)."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


_LUA = files("hitl_async_redis").joinpath("lua")


def _lua(path: str) -> str:
    """The fragment in `lua/<path>`, on lines of its own: each starts with a newline, so
    fragments put end to end never share a line."""
    return "\n" + _LUA.joinpath(path).read_text(encoding="utf-8")


# Store identity, first in every script: the caller appends the key `P:store` to KEYS and the id
# it knows to ARGV (both removed here, so the body sees its own). A store that was emptied (a
# restart without persistence, a flush) or replaced has no id, or another one: the script
# changes nothing and fails with STORE_LOST, never acting on a store that is not the caller's.
_IDENTITY = _lua("identity.lua")
_LIB = _lua("lib.lua")  # shared helpers, prepended to every script

STORE_LOST = "HITL_STORE_LOST"
"""The error a script raises when the store's id is not the caller's."""


def _script(name: str, *parts: str) -> Script:
    """The script `name`: the identity check, the shared helpers, then `parts` (paths under
    `lua/`) in order."""
    identity = _IDENTITY.replace("STORE_LOST ..", f"'{STORE_LOST}' ..")
    body = "".join(_lua(part) for part in parts)
    return Script(name, f"-- hitl_async_redis: {name}\n{identity}\n{_LIB}\n{body}")


IDENTIFY = Script(
    "identify",
    "redis.call('SET', KEYS[1], ARGV[1], 'NX')\nreturn redis.call('GET', KEYS[1])",
)
"""Give the store an id if it has none; return its id (how a saver learns it)."""

_LEASES = "leases/lease_lib.lua"
_LOADING = "checkpoints/load_lib.lua"
_RUNS = "runs/runs_lib.lua"

COMMIT = _script("commit", _LEASES, "checkpoints/commit.lua")
PUT_WRITES = _script("put_writes", "checkpoints/put_writes.lua")
LOAD = _script("load", _LOADING, "checkpoints/load.lua")
HISTORY = _script("history", "checkpoints/history.lua")
PRUNE = _script("prune", "checkpoints/prune.lua")
DELETE_THREAD = _script("delete_thread", "checkpoints/delete_thread.lua")
LIST_THREADS = _script("list_threads", "checkpoints/list_threads.lua")
THREAD_NAMESPACES = _script("thread_namespaces", "checkpoints/thread_namespaces.lua")
ACQUIRE_LEASE = _script("acquire_lease", _LEASES, "leases/acquire_lease.lua")
ACQUIRE_AND_LOAD = _script("acquire_and_load", _LEASES, _LOADING, "leases/acquire_and_load.lua")
RENEW_LEASE = _script("renew_lease", "leases/renew_lease.lua")
RELEASE_LEASE = _script("release_lease", _LEASES, "leases/release_lease.lua")
EXPIRED_LEASES = _script("expired_leases", "leases/expired_leases.lua")
LIST_INBOX = _script("list_inbox", "inbox/list_inbox.lua")
ENQUEUE = _script("enqueue", _RUNS, "runs/enqueue.lua")
CLAIM = _script("claim_request", _RUNS, "runs/claim.lua")
WORK_STATE = _script("work_state", _RUNS, "runs/work_state.lua")
RENEW_CLAIM = _script("renew_claim", "runs/renew_claim.lua")
FINISH = _script("finish_request", _RUNS, "runs/finish.lua")

SCRIPTS: tuple[Script, ...] = (
    COMMIT,
    PUT_WRITES,
    LOAD,
    HISTORY,
    PRUNE,
    DELETE_THREAD,
    LIST_THREADS,
    THREAD_NAMESPACES,
    ACQUIRE_LEASE,
    ACQUIRE_AND_LOAD,
    RENEW_LEASE,
    RELEASE_LEASE,
    EXPIRED_LEASES,
    LIST_INBOX,
    ENQUEUE,
    CLAIM,
    WORK_STATE,
    RENEW_CLAIM,
    FINISH,
)
