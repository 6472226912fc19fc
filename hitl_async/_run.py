"""One run on one thread: its options, the current checkpoint and the tasks of its next step.

The run's parts live in modules of their own and act on this object: the lease (`_lease`), the
input (`_input`), the superstep loop (`_superstep`), the way to the store (`_outbox`), the
events (`_events`, `_payloads`), `update_state`/`cancel` (`_edits`) and `get_state` (`_snapshot`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio

from hitl_async._checkpoint import NULL_TASK, EngineCheckpoint, TaskSpec, new_checkpoint_id, now_iso
from hitl_async._events import Namespace, RunEvents
from hitl_async._input import ReplayBound, apply_input
from hitl_async._lease import ThreadLease
from hitl_async._outbox import Outbox
from hitl_async._runtime import no_heartbeat
from hitl_async._superstep import tick
from hitl_async._task import Task, prepare_tasks
from hitl_async.checkpoint.capabilities import InboxStore, LeaseStore
from hitl_async.checkpoint.ids import validate_thread_id
from hitl_async.constants import DEFAULT_RECURSION_LIMIT, START
from hitl_async.errors import InvalidConfigError
from hitl_async.runtime import RunControl, Runtime
from hitl_async.telemetry import RunTrace, end_log_run, get_logger, inherited_trace, trace_run

if TYPE_CHECKING:
    from hitl_async._graph_base import GraphBase
    from hitl_async.checkpoint.base import BaseSaver, LoadedCheckpoint
    from hitl_async.types import Interrupt

__all__ = [
    "NOT_LOADED",
    "SKIPPED_STEP",
    "Run",
    "checkpoint_config",
]

NOT_LOADED: Final[Any] = object()
"""What `Run.claim()` returns when it did not load the thread (no leases): `load()` reads it."""

log = get_logger("hitl_async.run")


SKIPPED_STEP: Final[list[Any]] = [-1]
"""`made_by` of a checkpoint whose parent is not the checkpoint its step ran from: no results."""


_NOT_METADATA = frozenset(("thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map"))


def checkpoint_metadata(config: dict[str, Any]) -> dict[str, Any]:
    """What a run adds to its checkpoints' metadata, as LangGraph's savers do: the config's
    `metadata`, then its `configurable` keys of plain values (str, int, float, bool) other
    than the thread's and checkpoint's ids and `__`-prefixed ones."""
    out = dict(config.get("metadata") or {})
    for key, value in (config.get("configurable") or {}).items():
        if key in out or key in _NOT_METADATA or key.startswith("__"):
            continue
        if isinstance(value, (str, int, float, bool)):
            out[key] = value
    return out


def _step_timeout(graph: GraphBase) -> float | None:
    """The graph's `step_timeout` in seconds; None and 0 are no limit, as in LangGraph. Anything
    but a number >= 0 is an `InvalidConfigError` naming the graph, before the run starts."""
    value = getattr(graph, "step_timeout", None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidConfigError(
            f"graph {graph.name!r}: step_timeout must be seconds > 0 (or None for no limit), "
            f"got {value!r}"
        )
    return float(value) or None


def _drop(_: Any) -> None:
    return None


def checkpoint_config(run: Run, checkpoint_id: str | None) -> dict[str, Any]:
    """The config naming a checkpoint of `run`'s namespace; a subgraph's also carries the
    `checkpoint_map` (its parents' checkpoints and its own), as LangGraph's, so running the root
    graph with it travels back to that point of parent and subgraph alike."""
    conf: dict[str, Any] = {
        "thread_id": run.thread_id,
        "checkpoint_ns": run.ns,
        "checkpoint_id": checkpoint_id,
    }
    if run.ns and checkpoint_id is not None:
        parents = run.cp.metadata.get("parents") or {}
        conf["checkpoint_map"] = {**parents, run.ns: checkpoint_id}
    return {"configurable": conf}


class Run:
    """One run on one thread: the current checkpoint, its tasks, and the run's parts."""

    def __init__(
        self,
        graph: GraphBase,
        config: dict[str, Any],
        *,
        events: RunEvents | None = None,
        ns_path: Namespace = (),
        durability: str = "async",
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        saver: BaseSaver | None = None,
    ) -> None:
        self.graph = graph
        self.plan = graph.plan
        self.saver = saver if saver is not None else graph.checkpointer
        self.serde = graph.serde
        self.config = config
        conf = config.get("configurable") or {}
        thread_id = conf.get("thread_id")
        self.thread_id = None if thread_id is None else validate_thread_id(thread_id)
        self.ns: str = conf.get("checkpoint_ns", "")
        self.at: str | None = conf.get("checkpoint_id")
        self.address: dict[str, str] = {}
        """The `checkpoint_map` a root run was given: where it and its subgraphs start from."""
        self.durability = durability
        limit = config.get("recursion_limit")
        if limit is None:  # as LangChain's configs: a key set to None takes the default
            limit = DEFAULT_RECURSION_LIMIT
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidConfigError(f"recursion_limit must be an int >= 1, got {limit!r}")
        self.limit = limit
        self.step_timeout = _step_timeout(graph)
        """Seconds each superstep may run (the graph's `step_timeout`), None: no limit."""
        self.before = interrupt_before
        self.after = interrupt_after
        self.events = events if events is not None else RunEvents(())
        """The root run's events (a subgraph's run shares its parent's)."""
        self.ns_path = ns_path
        """This run's namespace in the root run's stream: () for the root."""
        self.modes = self.events.modes_at(ns_path)
        """The stream modes this run emits."""
        self.writer = self._write_custom if "custom" in self.modes else _drop
        """What a task's stream writer (`get_stream_writer()`) calls."""
        self.cp = EngineCheckpoint.empty()
        self.head: str | None = None
        """The id of the thread's newest stored (or queued) checkpoint."""
        self.dirty: set[str] = set()
        """Channels changed since the last checkpoint was queued for the store."""
        self.unsaved = False
        """The current checkpoint is not queued for the store yet."""
        self.skip_before = False
        self.rerun_waiting = False
        """Input None continues a paused thread: its first step reruns the tasks still waiting on
        interrupts (they ask again, under the same ids), as LangGraph does."""
        self.tasks: list[Task] = []
        self.last_tasks: Sequence[Task] = ()
        """The tasks of the last completed step (to name the writer of a value)."""
        self.interrupts: tuple[Interrupt, ...] = ()
        self.steps_run = 0
        self.user_metadata = checkpoint_metadata(config)
        self.parent: Run | None = None
        self.taps_outputs = True
        """Nodes' outputs show in an event stream as chunks (`on_chain_stream`): not in a
        subgraph a sync `invoke()` ran, which LangGraph runs without streaming, nor below it."""
        self.cache: Any = graph.cache
        """The cache of nodes with a `CachePolicy` (a subgraph without one uses its parent's)."""
        cmap = conf.get("checkpoint_map") or {}
        self.parents: dict[str, str] = {k: v for k, v in cmap.items() if k != self.ns}
        """A subgraph run's parent checkpoints by namespace (metadata "parents"): the parent
        run's, or those of the `checkpoint_map` of the subgraph checkpoint an edit starts from."""
        self.context: Any = None
        self.control = RunControl()
        """Asks the run to stop at its next step (`invoke(..., control=)`; a subgraph's run
        shares its parent's)."""
        self.replay: ReplayBound | None = None
        """Set while the run replays a past checkpoint (shared with its subgraphs' runs)."""
        # What the store can do, checked once (hitl_async.checkpoint.capabilities).
        self.coordinated = isinstance(self.saver, LeaseStore)
        self.inboxed = isinstance(self.saver, InboxStore)
        self.lease = ThreadLease(self.saver, graph.lease_ttl)
        self.outbox = Outbox(self)
        self.indexed: set[str] | None = None
        """Ids of the interrupts the store's inbox index holds for the thread (None: unknown)."""
        self.trace: RunTrace | None = inherited_trace()
        """Spans and metrics of the run (`hitl_async.telemetry`); None while nothing records."""

    # -- events ----------------------------------------------------------------------------------

    def emit(self, mode: str, chunk: Any) -> None:
        """An event of this run (dropped unless the stream asked for `mode`)."""
        if mode in self.modes:
            self.events.put_on_loop((self.ns_path, mode, chunk))

    def _write_custom(self, chunk: Any) -> None:
        self.events.put((self.ns_path, "custom", chunk))

    # -- the current checkpoint ------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self.cp.checkpoint_id is not None

    def output(self, values: Mapping[str, Any] | None = None) -> Any:
        """The state keys the graph outputs (of `values`, default the checkpoint's); a
        root-schema graph: its one value."""
        values = self.plan.state_values(self.cp.values if values is None else values)
        schema = self.graph.builder.output_schema
        if schema is self.graph.builder.schema:
            return schema.present(values)
        return {k: v for k, v in values.items() if k in schema.fields}

    def stream_values(self, values: Mapping[str, Any] | None = None) -> Any:
        """A `values` chunk: every state key, output-only keys too (as LangGraph streams it); a
        root-schema graph: its one value."""
        state = self.plan.state_values(self.cp.values if values is None else values)
        return self.graph.builder.schema.present(state)

    def config_for(self, checkpoint_id: str | None) -> dict[str, Any]:
        """The config naming a checkpoint of this run's namespace (see `checkpoint_config`)."""
        return checkpoint_config(self, checkpoint_id)

    def new_checkpoint(
        self,
        source: str,
        step: int,
        tasks: list[TaskSpec],
        made_by: list[Any] | None = None,
    ) -> None:
        """Move to a new checkpoint whose values are the current ones (changed since in place).

        `made_by`: the state writes of the current checkpoint's tasks that made it and are not
        stored as its pending writes (kept in the new checkpoint's header, for history)."""
        new_id = new_checkpoint_id(self.cp.checkpoint_id)
        # Who wrote last, kept in every checkpoint as LangGraph's versions_seen is, so that
        # `update_state()` without `as_node` needs no ancestor (pruned, or never stored under
        # durability="exit"); an edit or input keeps the one before it.
        writer = self.cp.writer
        if source == "loop":
            ran = sorted({t.node for t in self.cp.tasks if not t.push or t.node == START})
            if ran and ran != writer:  # (the same writer again keeps its list)
                writer = ran
        # Under durability="exit" an unsaved checkpoint is skipped: the chain links saved ones.
        skip = self.unsaved and self.durability == "exit"
        parent = self.cp.parent_id if skip else self.cp.checkpoint_id
        self.cp = EngineCheckpoint(
            checkpoint_id=new_id,
            parent_id=parent,
            created_at=now_iso(),
            step=step,
            metadata={
                **self.user_metadata,
                "source": source,
                "step": step,
                "parents": self.parents,
            },
            values=self.cp.values,
            versions=self.cp.versions,
            tasks=tasks,
            # A skipped parent (durability="exit"): this step's writes are not its parent's.
            made_by=SKIPPED_STEP if skip else made_by or [],
            writer=writer,
        )
        for ch in self.dirty:  # (an UntrackedValue key gets no version: never stored)
            if ch in self.cp.values and ch not in self.plan.untracked:
                self.cp.versions[ch] = new_id
            else:
                self.cp.versions.pop(ch, None)
        self.unsaved = True

    def prepare_tasks(self) -> None:
        """Tasks of the step that runs from the current checkpoint, with their pending writes."""
        self.tasks = prepare_tasks(self.cp, self.ns)

    def pending(self) -> list[tuple[Task, Interrupt]]:
        """Unanswered interrupts of unfinished tasks, in task order."""
        return [(t, i) for t in self.tasks for i in t.pending]

    def runtime_for(
        self, writer: Any, heartbeat: Callable[[], None] = no_heartbeat, pad: Any = None
    ) -> Runtime[Any]:
        """The `Runtime` given to a node (`pad`: its task's, for `execution_info`)."""
        return Runtime.of_run(self, writer, heartbeat, pad)

    # -- loading ---------------------------------------------------------------------------------

    def need_thread(self) -> str:
        """The thread id; a run with a checkpointer cannot go without one."""
        if self.thread_id is None:
            raise InvalidConfigError(
                "this graph has a checkpointer, so every run needs a thread id: pass "
                "config={'configurable': {'thread_id': '...'}}"
            )
        return self.thread_id

    async def load(self, prefetched: Any = NOT_LOADED) -> None:
        """Load the thread's head (or the checkpoint named in the config)."""
        saver = self.saver
        if saver is None:
            return
        thread_id = self.need_thread()
        if prefetched is NOT_LOADED:
            loaded = await saver.load(thread_id, self.ns, self.at)
        else:
            loaded = prefetched
        if loaded is None and self.at is not None:
            raise InvalidConfigError(
                f"thread {self.thread_id!r} has no checkpoint {self.at!r} (namespace "
                f"{self.ns!r}); use a config from get_state_history()"
            )
        if loaded is not None:
            self.set_loaded(loaded)
            if self.at is None or self.at == (head := await self._head_id(saver, thread_id)):
                self.head = self.cp.checkpoint_id
                self.indexed = {i.id for _, i in self.pending()}
            else:
                self.head = head
        else:
            self.indexed = set()
            self.prepare_tasks()

    def set_loaded(self, loaded: LoadedCheckpoint) -> None:
        """Make a stored checkpoint current, with the input's pending update folded in."""
        self.cp = EngineCheckpoint.decode(loaded, self.serde)
        null_items = [
            (c, v) for _, c, v in self.cp.writes.get(NULL_TASK, ()) if not c.startswith("__")
        ]
        if null_items:
            self.dirty |= self.plan.apply(
                self.cp.values, null_items, source="Command(update=...)", strict=False
            )
        self.prepare_tasks()

    async def _head_id(self, saver: BaseSaver, thread_id: str) -> str | None:
        current = await saver.load(thread_id, self.ns)
        return current.record.checkpoint_id if current is not None else None

    # -- the run's course ------------------------------------------------------------------------

    async def claim(self, wait: float = 0.0) -> Any:
        """Take the thread's lease (waiting up to `wait` seconds for a busy thread) and load the
        checkpoint the run starts from in the same round trip; `NOT_LOADED` without leases."""
        if not self.coordinated or self.parent is not None:
            return NOT_LOADED
        return await self.lease.claim(
            self.need_thread(),
            wait=wait,
            graph=self.graph.name,
            checkpoint_ns=self.ns,
            checkpoint_id=self.at,
        )

    async def start(self, input: Any, *, wait: float = 0.0) -> None:
        """Claim the thread, load it and apply the run's input. Strict resume errors are raised
        before anything is written."""
        self.trace = trace_run(self)
        work = self._start(input, wait)
        await (work if self.trace is None else self.trace.start(work, input))

    async def _start(self, input: Any, wait: float) -> None:
        await self.load(await self.claim(wait))
        await apply_input(self, input)

    async def tick(self) -> bool:
        """Run one superstep; False when the run ended (finished or paused)."""
        work = tick(self)
        return await (work if self.trace is None else self.trace.step(self, work))

    async def finish(self, *, release: bool = False) -> None:
        """Write what is still only in memory or queued (the run ended or paused); with
        `release`, give the thread back in the same round trip."""
        work = self._finish(release)
        await (work if self.trace is None or not release else self.trace.end(self, work))

    async def _finish(self, release: bool) -> None:
        await self.outbox.finish(release=release)
        if release:
            await self.release()
            end_log_run(self)

    async def release(self) -> None:
        """Give the thread back (the run ended, paused or failed)."""
        await self.lease.release(self.thread_id)

    async def abandon(self) -> None:
        """After an error, a cancellation or an abandoned stream: store what can be stored
        (under durability="exit" too, as LangGraph), always give the thread back. A write that
        fails here is logged; the run's own error is what the caller sees."""
        work = self._abandon()
        await (work if self.trace is None else self.trace.end(self, work, abandoned=True))

    async def _abandon(self) -> None:
        with anyio.CancelScope(shield=True):
            try:
                if self.durability == "exit":  # the step's finished tasks too
                    await self.outbox.persist([t for t in self.tasks if t.done], defer=True)
                if self.outbox.pending:
                    await self.finish()
            except Exception as exc:
                log.warning(
                    "thread %r: could not store the run's last steps: %s", self.thread_id, exc
                )
            finally:
                await self.release()
                end_log_run(self)
