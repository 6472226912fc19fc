"""Run the benchmark suite: every workload on every driver, hitl-async vs LangGraph vs the floor.

    python -m benchmarks                              # the default suite (all drivers)
    python -m benchmarks --quick                      # smoke-test sizes, 1 repetition
    python -m benchmarks --drivers memory,sqlite --workloads chain10,threads200 --reps 5

Engines are interleaved per repetition (and their order alternates), each repetition on a fresh
store; medians are reported. `drain` (worker processes on a run queue) is hitl-async only and
needs a store shared across processes: LangGraph's cell and memory's row say "—". Writes
`results.json`, `results.md` and `ratios.png` to `--out`.
Exits 1 when a hitl-async run fails (its correctness checks included); LangGraph failures are
reported in the table, not raised.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.drain import drain
from benchmarks.machine import machine_info, machine_lines
from benchmarks.report import (
    Cell,
    Row,
    markdown,
    rich_table,
    write_chart,
    write_json,
)
from benchmarks.rss import run_subprocess
from benchmarks.stores import DRIVERS, DURABLE, Servers, floor, open_store, server_versions
from benchmarks.token_workloads import TOKEN_SYNC_API
from benchmarks.user_workloads import SYNC_API
from benchmarks.workloads import (
    ALL_WORKLOADS,
    HITL,
    HITL_ONLY,
    LANGGRAPH,
    LANGGRAPH_MISSING,
    SHARED_STORE_ONLY,
    WORKLOADS,
    Engine,
    Result,
    Sizes,
    describe_error,
    hitl_engine,
    langgraph_engine,
)

DEFAULT_OUT = Path(__file__).parent / "results"
README = Path(__file__).parent / "README.md"
START_MARK, END_MARK = "<!-- results:start -->", "<!-- results:end -->"
MEMORY_NOT_SHARED = "an in-memory store cannot be shared with worker processes"

METHOD = [
    "## Method",
    "",
    "- Every repetition of every workload uses a fresh store: a temp SQLite file, a new "
    "PostgreSQL schema (dropped after), a new Redis key prefix (its keys deleted after, never "
    "FLUSHALL), or a new in-memory saver. Both engines run the same node functions with their "
    "default durability (`async`): async nodes through the async API in the base workloads, "
    "plain `def` nodes through `ainvoke` in the `-def` ones, and `def` nodes through the sync "
    "API (`invoke`/`stream`/`get_state`, called from a plain thread with no event loop) in the "
    "`-sync` ones and example1-sync (the chapter's Example 1: stream the start to its "
    "interrupt, `get_state`, stream the resume; ms per cycle).",
    "- For the sync API LangGraph runs with its sync savers (`SqliteSaver`, `PostgresSaver`, "
    "plainredis `RedisSaver`, set up like the async ones); hitl-async's savers serve both APIs. "
    "chain10 and fanout200 variants report a floor of the same node functions called directly "
    "in a loop, and what each engine adds above it (plus one raw write per step on a durable "
    "driver).",
    "- LangGraph runs with its matching saver: `InMemorySaver`, `AsyncSqliteSaver` "
    "(langgraph-checkpoint-sqlite; WAL and `synchronous=NORMAL` set on its connection, the same "
    "durability as hitl-async's driver), `AsyncPostgresSaver` (langgraph-checkpoint-postgres, "
    "one psycopg connection as `from_conn_string` makes, `search_path` = a fresh schema) and "
    "`AsyncRedisSaver` from langgraph-checkpoint-plainredis (plain Redis, fresh `prefix`; "
    "its own client by default, or with `--langgraph-redis-pool N` a client on a blocking "
    "pool of N connections, since the default pool fails under 200 concurrent runs).",
    "- Each repetition starts after a `gc.collect()`, so neither engine pays for collecting "
    "the previous repetition's garbage.",
    "- Every workload asserts the final states of both engines; an assertion or an exception "
    "is a failure in the table.",
    "- chain10: per-superstep time of a 10-node chain (median run ÷ 10). threads200: 200 "
    "threads started concurrently to an `interrupt()`, then resumed concurrently (runs/s). "
    "latency: sequential start + `aget_state` + resume on fresh threads. fanout200: one "
    "`Send` fan-out of 200 tasks. turns300: one thread paused and resumed 300 times; drift = "
    "median of the last 20 turns ÷ median of the first 20. state1mb: a 1 MiB random (so "
    "incompressible) channel that stays unchanged while another changes; bytes per step = "
    "growth of the store ÷ checkpoints added, both read back from the store. rss1000: peak RSS "
    "above a warmed baseline while 1000 threads are started concurrently and left paused, in "
    "a fresh interpreter per measurement (psutil, 5 ms sampling). drain (hitl-async only; "
    "LangGraph has no run queue; not on memory, which processes cannot share): 2000 threads "
    "paused on an `interrupt()` in-process, 2000 `graph.asubmit(Command(resume=...))` "
    "requests queued (timed apart as enqueue), then 4 `python -m benchmarks.drain_worker` "
    "processes (each a `hitl_async.Worker`, default concurrency 4; --quick: 200 requests, 2 "
    "workers) start and warm up (timed "
    "apart as spawn); the headline is resumes/s from their go signal until every request is "
    "seen `done` (polled through the saver). Each request must be done, claimed once, with "
    "the right result, and each thread's final state right, its after-interrupt node run "
    "once, by a worker process.",
    "- Store footprint (state1mb, and chain10's B/step): SQLite `sum(length(CAST(col AS "
    "BLOB)))` over all columns of the engine's tables (hitl-async: threads, checkpoints, blobs, "
    "writes; LangGraph: checkpoints, writes); PostgreSQL `sum(pg_column_size(col))` over the "
    "same (LangGraph: checkpoints, checkpoint_blobs, checkpoint_writes); Redis: key names + "
    "hash fields and values + set/zset members (+8 B per score) + string values under the "
    "prefix; memory: bytes and strings reachable from the saver's dicts. Checkpoints are "
    "counted the same way (rows of `checkpoints`; hitl-async Redis: fields of the `cp` hashes; "
    "LangGraph Redis: `cp` keys).",
    "- Raw floor: the median of sequential single writes of the size hitl-async stores per "
    "chain10 step: sqlite3 INSERT + commit through one thread hop (WAL, synchronous=NORMAL), "
    "asyncpg prepared INSERT "
    "in autocommit into a fresh schema, redis.asyncio SET. Measured in the chain10 repetitions, "
    "interleaved with the engines.",
]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--drivers", default=",".join(DRIVERS), help="comma list of " + ", ".join(DRIVERS)
    )
    parser.add_argument(
        "--workloads",
        default=",".join(ALL_WORKLOADS),
        help="comma list of " + ", ".join(ALL_WORKLOADS),
    )
    parser.add_argument(
        "--reps", type=int, default=None, help="repetitions per engine (default 5; --quick: 1)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for JSON/MD/PNG")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, 1 repetition (smoke test)"
    )
    parser.add_argument("--no-langgraph", action="store_true", help="hitl-async and the floor only")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per run (default 120; --quick: 60)"
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="also put the results into benchmarks/README.md (for full runs on the reference box)",
    )
    parser.add_argument("--postgres-url", default=Servers().postgres)
    parser.add_argument("--redis-url", default=Servers().redis)
    parser.add_argument(
        "--langgraph-redis-pool",
        type=int,
        default=None,
        metavar="N",
        help="give LangGraph's Redis saver a client on a blocking pool of N connections "
        "(default: its own client, whose default pool fails under 200 concurrent runs)",
    )
    parser.add_argument(
        "--otel",
        action="store_true",
        help="instead of the suite: the cost of OpenTelemetry (absent / API without a provider / "
        "SDK with a no-op exporter) on chain10 and threads200; default drivers memory,sqlite, "
        "7 repetitions (benchmarks/otel.py)",
    )
    args = parser.parse_args(argv)
    args.reps_explicit = args.reps is not None
    args.drivers_list = _split(parser, args.drivers, DRIVERS, "driver")
    args.workloads_list = _split(parser, args.workloads, ALL_WORKLOADS, "workload")
    if args.reps is None:
        args.reps = 1 if args.quick else 5
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if args.timeout is None:
        args.timeout = 60.0 if args.quick else 120.0
    return args


def _split(parser: argparse.ArgumentParser, text: str, known: list[str], what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in items if x not in known]
    if unknown or not items:
        parser.error(f"unknown or no {what}(s) {unknown}; choose from {', '.join(known)}")
    return [x for x in known if x in items]  # canonical order


async def _run_one(
    workload: str, driver: str, engine: Engine, sizes: Sizes, servers: Servers, timeout: float
) -> Result | str:
    """One repetition; a failure comes back as its one-line reason."""
    try:
        if workload == "rss1000":
            return await asyncio.to_thread(
                run_subprocess, engine.name, driver, sizes.rss_threads, servers, timeout
            )
        run = drain if workload == "drain" else WORKLOADS[workload]
        gc.collect()  # no collection of the previous run's garbage inside this one's timing
        async with asyncio.timeout(timeout):
            async with open_store(
                engine.name, driver, servers, workload in SYNC_API | TOKEN_SYNC_API
            ) as store:
                return await run(engine, store, sizes)
    except TimeoutError:
        return f"timed out after {timeout:.0f} s"
    except Exception as exc:
        return describe_error(exc)


def _record(cell: Cell, outcome: Result | str) -> None:
    if isinstance(outcome, str):
        cell.failures.append(outcome)
    else:
        cell.samples.append(outcome)


async def _suite(args: argparse.Namespace, progress: Any, task: Any) -> list[Row]:
    sizes = Sizes.quick() if args.quick else Sizes()
    servers = Servers(args.postgres_url, args.redis_url, args.langgraph_redis_pool)
    engines = [hitl_engine()]
    lg = None if args.no_langgraph else langgraph_engine()
    if lg is not None:
        engines.append(lg)
    lg_skip = "--no-langgraph" if args.no_langgraph else None
    if lg is None and not args.no_langgraph:
        lg_skip = "LangGraph not installed (pip install -e '.[bench]')"
    floors = {d: Cell() for d in args.drivers_list if d in DURABLE}
    rows: list[Row] = []
    for workload in args.workloads_list:
        for driver in args.drivers_list:
            cells = {HITL: Cell(), LANGGRAPH: Cell(skipped=lg_skip)}
            if workload in HITL_ONLY:
                cells[LANGGRAPH] = Cell(not_applicable=HITL_ONLY[workload])
            if (workload, driver) in LANGGRAPH_MISSING:
                cells[LANGGRAPH] = Cell(not_applicable=LANGGRAPH_MISSING[workload, driver])
            if workload in SHARED_STORE_ONLY and driver not in DURABLE:
                cells[HITL] = Cell(not_applicable=MEMORY_NOT_SHARED)
            runnable = [e for e in engines if cells[e.name].not_applicable is None]
            with_floor = workload.startswith("chain10") and driver in floors
            for rep in range(args.reps):
                order = runnable if rep % 2 == 0 else runnable[::-1]
                for engine in order:
                    where = f"{workload} · {driver} · {engine.name} · {rep + 1}/{args.reps}"
                    progress.update(task, description=where)
                    outcome = await _run_one(workload, driver, engine, sizes, servers, args.timeout)
                    _record(cells[engine.name], outcome)
                    progress.advance(task)
                if with_floor:
                    progress.update(
                        task, description=f"{workload} · {driver} · floor · {rep + 1}/{args.reps}"
                    )
                    last = cells[HITL].samples[-1] if cells[HITL].samples else None
                    size = int(last.detail.get("bytes/step", 512)) if last else 512
                    try:
                        us = await floor(driver, servers, size, sizes.floor_writes)
                        floors[driver].samples.append(Result(us, "µs/write", {"bytes": size}))
                    except Exception as exc:
                        floors[driver].failures.append(describe_error(exc))
                    progress.advance(task)
            rows.append(Row(workload, driver, cells[HITL], cells[LANGGRAPH], floors.get(driver)))
    if "chain10" not in args.workloads_list:  # still measure each driver's floor once per rep
        for driver, cell in floors.items():
            for _ in range(args.reps):
                progress.update(task, description=f"floor · {driver}")
                try:
                    us = await floor(driver, servers, 512, sizes.floor_writes)
                    cell.samples.append(Result(us, "µs/write", {"bytes": 512}))
                except Exception as exc:
                    cell.failures.append(describe_error(exc))
                progress.advance(task)
    return rows


def update_readme(path: Path, results: str) -> None:
    """Replace what is between the results markers of `path` with `results`."""
    text = path.read_text()
    head, sep, rest = text.partition(START_MARK)
    _, sep2, tail = rest.partition(END_MARK)
    if not sep or not sep2:
        raise SystemExit(f"{path} has no {START_MARK} ... {END_MARK} section")
    path.write_text(f"{head}{START_MARK}\n{results}{END_MARK}{tail}")


def _units(args: argparse.Namespace) -> int:
    lg = 0 if args.no_langgraph or langgraph_engine() is None else 1
    durable = sum(d in DURABLE for d in args.drivers_list)
    per_rep = 0
    for workload in args.workloads_list:
        for driver in args.drivers_list:
            if workload in SHARED_STORE_ONLY and driver not in DURABLE:
                continue
            missing = workload in HITL_ONLY or (workload, driver) in LANGGRAPH_MISSING
            per_rep += 1 + (0 if missing else lg)
    chains = sum(w.startswith("chain10") for w in args.workloads_list)
    return args.reps * (per_rep + durable * max(chains, 1))  # a floor per chain10 variant


def main(argv: list[str] | None = None) -> int:
    """Run the suite, print the table, write the reports; 1 if a hitl-async run failed."""
    given = list(argv if argv is not None else sys.argv[1:])
    if "--server" in given:
        from benchmarks.server import main as server_main

        return server_main(given)
    args = _parse(argv)
    if args.otel:
        from benchmarks.otel import run as otel_overhead

        return otel_overhead(args, argv)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(width=None if sys.stdout.isatty() else 150)
    command = "python -m benchmarks " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    servers = Servers(args.postgres_url, args.redis_url, args.langgraph_redis_pool)
    versions = asyncio.run(server_versions(servers, args.drivers_list))
    machine = machine_info(versions)
    for line in machine_lines(machine):
        console.print(line, highlight=False)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=_units(args))
        rows = asyncio.run(_suite(args, progress, task))
    duration = time.perf_counter() - t0
    payload: dict[str, Any] = {
        "command": command.strip(),
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": duration,
        "machine": machine,
        "settings": {
            "reps": args.reps,
            "quick": args.quick,
            "drivers": args.drivers_list,
            "workloads": args.workloads_list,
            "langgraph": not args.no_langgraph,
            "sizes": vars(Sizes.quick() if args.quick else Sizes()),
            "timeout_s": args.timeout,
            "langgraph_redis_pool": args.langgraph_redis_pool,
        },
        "not_included": [],
        "method": METHOD,
    }
    title = (
        f"hitl-async vs LangGraph vs raw floor — medians of {args.reps} rep(s), {duration:.0f} s"
    )
    console.print(rich_table(rows, title))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results.json", payload, rows)
    write_chart(args.out / "ratios.png", rows, args.drivers_list, args.workloads_list)
    (args.out / "results.md").write_text(markdown(payload, rows, "ratios.png"))
    if args.update_readme:
        chart = os.path.relpath(args.out / "ratios.png", README.parent)
        update_readme(README, markdown(payload, rows, chart, level=3, method=False))
    console.print(f"wrote {args.out / 'results.json'}, results.md, ratios.png", highlight=False)
    hitl_failures = [r for r in rows if r.hitl.failures]
    for r in hitl_failures:
        console.print(f"[red]hitl-async failed[/red] {r.workload}/{r.driver}: {r.hitl.status()}")
    return 1 if hitl_failures else 0


if __name__ == "__main__":
    sys.exit(main())
