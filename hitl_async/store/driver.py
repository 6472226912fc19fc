"""`BackendStore`: LangGraph's store operations on top of a driver's `StoreBackend`.

A batch is checked completely before anything runs (a bad operation raises and changes nothing),
then its reads run in order against the state before the batch, then its writes run together in
one atomic backend call, as LangGraph's stores do. Puts of the same item in one batch collapse to
the last one. Filters a backend cannot evaluate itself, similarity scoring, ordering and TTL
arithmetic happen here, identically for every driver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar, cast

from hitl_async.store.backend import PutRow, StoreBackend, StoredRow
from hitl_async.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    ListNamespacesOp,
    Op,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from hitl_async.store.codec import (
    decode_value,
    now_us,
)
from hitl_async.store.embed import (
    Embedder,
    ensure_embeddings,
    get_text_at_path,
    pack_vector,
    tokenize_path,
)
from hitl_async.store.errors import InvalidStoreRequestError
from hitl_async.store.filters import Condition
from hitl_async.store.grouping import Grouper
from hitl_async.store.namespaces import list_matching
from hitl_async.store.planning import BatchPlan, PlannedOps, known_plan, literal_prefix, plan_batch
from hitl_async.store.rows import (
    US_PER_MINUTE,
    put_rows,
    row_item,
    row_search_item,
    search_rows,
)
from hitl_async.store.sweeper import StoreSweeper

__all__ = ["BackendStore", "drive", "grouping_options"]

T = TypeVar("T")


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (a sync-capable backend) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise RuntimeError("a synchronous store call suspended; this backend is not sync-capable")


def grouping_options(options: dict[str, Any]) -> dict[str, Any]:
    """`options` with `group_commit` and `batches_in_flight` taken from text (URL query values
    such as "false" or "8") when they are text."""
    out = dict(options)
    flag = out.get("group_commit")
    if isinstance(flag, str):
        lowered = flag.strip().lower()
        if lowered not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            raise InvalidStoreRequestError(f"group_commit is true or false, got {flag!r}")
        out["group_commit"] = lowered in {"1", "true", "yes", "on"}
    count = out.get("batches_in_flight")
    if isinstance(count, str):
        try:
            out["batches_in_flight"] = int(count)
        except ValueError:
            raise InvalidStoreRequestError(
                f"batches_in_flight is a positive int, got {count!r}"
            ) from None
    return out


class BackendStore(BaseStore):
    """A `BaseStore` on a `StoreBackend`, with TTLs and optional semantic search.

    `index`: `{"embed": ..., "dims": N, "fields": ["$"]}` enables `search(query=...)`: every put
    embeds the texts at `fields` (or at the put's `index=` paths) and a query ranks items by the
    best cosine similarity of their vectors, exactly (every candidate is scored). `ttl`: a
    `TTLConfig` (`default_ttl`, `refresh_on_read`, `sweep_interval_minutes`, `omit_expired`).
    `group_commit` (default True) and `batches_in_flight` (default 1): async calls made while
    that many batches are under way go out together as one batch (see
    `hitl_async.store.grouping`).
    """

    supports_ttl = True

    def __init__(
        self,
        backend: StoreBackend,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        group_commit: bool = True,
        batches_in_flight: int = 1,
    ) -> None:
        if isinstance(batches_in_flight, bool) or not isinstance(batches_in_flight, int):
            raise InvalidStoreRequestError(
                f"batches_in_flight is an int, got {batches_in_flight!r}"
            )
        if batches_in_flight < 1:
            raise InvalidStoreRequestError(
                f"batches_in_flight must be >= 1, got {batches_in_flight}"
            )
        self.backend = backend
        self.group_commit = bool(group_commit)
        self.batches_in_flight = batches_in_flight
        self._groupers: dict[asyncio.AbstractEventLoop, Grouper] = {}
        self.ttl_config = ttl
        self.index_config = dict(index) if index else None
        self.embeddings: Embedder | None = None
        self._fields: list[tuple[str, list[str]]] = []
        if index:
            self.embeddings = ensure_embeddings(index.get("embed"), index.get("dims"))
            fields = index.get("fields") or ["$"]
            self._fields = [(f, tokenize_path(f) if f != "$" else []) for f in fields]
        self._omit_expired = bool((ttl or {}).get("omit_expired", True))
        self._sweeper: StoreSweeper | None = None
        # One grouper per loop, backends pool per loop; an embedder may hold a loop's client.
        self.any_loop = self.embeddings is None

    # --- entry points -------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations from synchronous code (directly when the backend allows it, else on
        the shared background event loop)."""
        ops = list(ops)
        if self.backend.sync_capable:
            return drive(self._run(ops, sync=True))
        from hitl_async import _sync

        return _sync.run(self.abatch, ops)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations from async code; concurrent calls share round trips (group commit,
        see `hitl_async.store.grouping`) unless the store was made with `group_commit=False`."""
        ops = PlannedOps(ops)
        ops.plan = plan_batch(ops)  # an invalid call fails alone, before it joins a batch
        if not self.group_commit:
            return await self._run_async(ops)
        loop = asyncio.get_running_loop()
        grouper = self._groupers.get(loop)
        if grouper is None:
            for old in [lp for lp in self._groupers if lp.is_closed()]:
                del self._groupers[old]
            grouper = self._groupers[loop] = Grouper(self._run_async, self.batches_in_flight)
        return await grouper.submit(ops)

    async def _run_async(self, ops: list[Op]) -> list[Result]:
        plan = known_plan(ops)
        offload = getattr(self.backend, "offload", None)
        if getattr(self.backend, "inline_writes", False):
            return await self._run(ops, sync=False, plan=plan)  # this thread when it can
        if getattr(self.backend, "inline_reads", False) and all(
            isinstance(o, GetOp | ListNamespacesOp)
            or (isinstance(o, SearchOp) and not (o.query and self.embeddings is not None))
            for o in ops
        ):
            return await self._run(ops, sync=False, plan=plan)  # reads on this thread
        if offload is not None:  # a thread-bound backend: the whole batch in one hop
            return cast(
                list[Result], await offload(lambda: drive(self._run(ops, sync=True, plan=plan)))
            )
        return await self._run(ops, sync=False, plan=plan)

    async def setup(self) -> None:
        """Create the driver's tables (done on first use anyway)."""
        await self.backend.setup()

    async def aclose(self) -> None:
        """Stop the TTL sweeper and close the driver's connections."""
        await self.stop_ttl_sweeper()
        await self.backend.aclose()

    async def __aenter__(self) -> BackendStore:
        await self.setup()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _live_after(self, now: int) -> int | None:
        return now if self._omit_expired else None

    # --- running ------------------------------------------------------------------------------

    async def _run(
        self, ops: list[Op], *, sync: bool, plan: BatchPlan | None = None
    ) -> list[Result]:
        if plan is None:
            plan = plan_batch(ops)
        now = now_us()
        if not (plan.gets or plan.searches or plan.lists):  # writes only
            if plan.puts:
                await self._write(plan, now, sync)
            return plan.results
        live = self._live_after(now)
        touch: list[tuple[str, str]] = []
        refs = [(ns, key) for _, ns, key, _ in plan.gets]
        rows, searched, wrote = await self._reads(plan, refs, live, sync, now)
        for (i, _, _, refresh), row in zip(plan.gets, rows, strict=True):
            if row is not None:
                plan.results[i] = row_item(row)
                if refresh and row.ttl_minutes is not None:
                    touch.append((row.namespace, row.key))
        for (i, op, _, _), found in zip(plan.searches, searched, strict=True):
            plan.results[i] = [item for item, _ in found]
            if op.refresh_ttl:
                touch.extend(
                    (row.namespace, row.key) for _, row in found if row.ttl_minutes is not None
                )
        for i, lop in plan.lists:
            names = await self.backend.namespaces(literal_prefix(lop), live, sync)
            plan.results[i] = list_matching(names, lop)
        if touch and wrote:  # items just written have their new expiry already
            touch = [ref for ref in touch if ref not in plan.puts]
        if touch:
            await self.backend.touch(touch, now, sync)
        if plan.puts and not wrote:
            await self._write(plan, now, sync)
        return plan.results

    async def _reads(
        self, plan: BatchPlan, refs: list[tuple[str, str]], live: int | None, sync: bool, now: int
    ) -> tuple[list[StoredRow | None], list[list[tuple[SearchItem, StoredRow]]], bool]:
        """The rows of the batch's gets and the results of its searches, in as few round trips
        as the backend allows: one (`read_many`) for the gets and every search it can answer
        alone, the other searches concurrently. When that one statement answers every read of
        the batch and the backend can (`writes_with_reads`), it also carries the batch's puts
        (reading the state before them): one round trip and one commit for the whole batch.
        The last value says whether the puts were written."""
        read_many = None if sync else getattr(self.backend, "read_many", None)
        searched: list[list[tuple[SearchItem, StoredRow]] | None] = [None] * len(plan.searches)
        first: dict[str, int] = {}  # identical searches of a batch run once
        copies: list[tuple[int, int]] = []
        for n, (_, op, prefix, cond) in enumerate(plan.searches):
            same = repr((prefix, cond, op.limit, op.offset, op.query))
            if same in first:
                copies.append((n, first[same]))
                searched[n] = []
            else:
                first[same] = n
        simple = [
            n
            for n in first.values()
            if not (plan.searches[n][1].query and self.embeddings is not None)
            and self.backend.pushdown(plan.searches[n][3])
        ]
        rows: list[StoredRow | None] = []
        merge = (
            read_many is not None
            and plan.puts
            and not plan.lists
            and len(simple) == len(first)
            and self.embeddings is None
            and getattr(self.backend, "writes_with_reads", False)
            and all(data is not None for _, data in plan.puts.values())
        )
        if read_many is not None and (merge or len(simple) + bool(refs) > 1):
            requests = []
            for n in simple:
                _, op, prefix, conditions = plan.searches[n]
                requests.append((prefix, conditions, op.limit, op.offset))
            if merge:
                puts = put_rows(plan, now)
                rows, pages = await read_many(refs, requests, live, puts)
            else:
                rows, pages = await read_many(refs, requests, live)
            for n, page in zip(simple, pages, strict=True):
                searched[n] = [
                    (row_search_item(r, decode_value(r.value, r.namespace, r.key), None), r)
                    for r in page
                ]
        elif refs:
            rows = await self.backend.fetch(refs, live, sync)
        rest = [n for n, found in enumerate(searched) if found is None]
        if rest and not sync and len(rest) > 1:
            done = await asyncio.gather(
                *(
                    search_rows(
                        self.backend, self.embeddings, *self._search_args(plan, n), live, sync
                    )
                    for n in rest
                )
            )
        else:
            done = [
                await search_rows(
                    self.backend, self.embeddings, *self._search_args(plan, n), live, sync
                )
                for n in rest
            ]
        for n, found in zip(rest, done, strict=True):
            searched[n] = found
        for n, original in copies:  # the same rows, as items of their own
            searched[n] = [
                (row_search_item(r, decode_value(r.value, r.namespace, r.key), item.score), r)
                for item, r in searched[original] or []
            ]
        return rows, [found or [] for found in searched], bool(merge)

    @staticmethod
    def _search_args(plan: BatchPlan, n: int) -> tuple[SearchOp, str, tuple[Condition, ...]]:
        _, op, prefix, conditions = plan.searches[n]
        return op, prefix, conditions

    async def _write(self, plan: BatchPlan, now: int, sync: bool) -> None:
        rows: list[PutRow] = []
        deletes: list[tuple[str, str]] = []
        texts: list[str] = []
        owners: list[tuple[int, str]] = []
        for (ns, key), (op, data) in plan.puts.items():
            if data is None:
                deletes.append((ns, key))
                continue
            vectors: list[tuple[str, bytes]] | None = None
            if self.embeddings is not None:
                vectors = []
                if op.index is not False:
                    paths = (
                        self._fields
                        if op.index is None
                        else [(p, tokenize_path(p) if p != "$" else []) for p in op.index]
                    )
                    for path, tokens in paths:
                        found = get_text_at_path(op.value, tokens or path)
                        for j, text in enumerate(found):
                            texts.append(text)
                            owners.append((len(rows), f"{path}.{j}" if len(found) > 1 else path))
            at = now_us() if rows else now  # every write of a batch has a time of its own
            expires = None if op.ttl is None else at + int(op.ttl * US_PER_MINUTE)
            rows.append(PutRow(ns, key, data, at, expires, op.ttl, vectors))
        if texts:
            assert self.embeddings is not None
            if sync:
                embedded = self.embeddings.documents(texts)
            else:
                embedded = await self.embeddings.adocuments(texts)
            for (index, path), vector in zip(owners, embedded, strict=True):
                vecs = rows[index].vectors
                assert vecs is not None
                vecs.append((path, pack_vector(vector)))
        await self.backend.write(rows, deletes, sync)

    # --- TTL ----------------------------------------------------------------------------------

    async def asweep_ttl(self) -> int:
        """Delete every item whose TTL passed; the number deleted."""
        return await self.backend.sweep(now_us(), False)

    def sweep_ttl(self) -> int:
        """Synchronous `asweep_ttl`."""
        if self.backend.sync_capable:
            return drive(self.backend.sweep(now_us(), True))
        from hitl_async import _sync

        return _sync.run(self.asweep_ttl)

    async def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> asyncio.Task[None]:
        """Sweep expired items every `sweep_interval_minutes` (default: the TTL config's
        `sweep_interval_minutes`, else 5) in a task of the running asyncio loop, until
        `stop_ttl_sweeper()`. Starting it again returns the running task."""
        if self._sweeper is None or not self._sweeper.running:
            self._sweeper = StoreSweeper(self, sweep_interval_minutes)
        return await self._sweeper.start()

    async def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper task; True once it stopped (or was not running)."""
        return True if self._sweeper is None else await self._sweeper.stop(timeout)
