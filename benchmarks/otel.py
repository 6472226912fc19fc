"""The cost of OpenTelemetry: chain10 and threads200 with it absent, installed without a provider,
and with an SDK provider exporting to a no-op exporter, side by side.

    python -m benchmarks --otel                          # memory and sqlite, 7 repetitions
    python -m benchmarks --otel --drivers memory,sqlite,postgres,redis --reps 9
    python -m benchmarks --otel --quick                  # 2 repetitions, small sizes

Every measurement is a fresh interpreter (`python -m benchmarks.otel MODE DRIVER WORKLOAD`):
a process-wide provider cannot be unset, and an import must not leak from one mode to the next.

- absent: `opentelemetry` cannot be imported (a meta-path finder refuses it), as without the
  `otel` extra;
- api: `opentelemetry.trace` and `opentelemetry.metrics` are imported but no provider is set
  (the extra installed, or a library that imports the API, and nothing configured);
- sdk: an SDK `TracerProvider` whose spans go to a no-op exporter (SimpleSpanProcessor) and an
  SDK `MeterProvider` with a reader that never exports: every span and point is made.

The modes run interleaved (their order rotates per repetition), each measurement on a fresh
store. Each figure is measured in CPU time of the benchmark process (all its threads: what
tracing adds is CPU work) and in wall time; the headline is the best repetition's CPU time, the
least disturbed by the other processes of a shared machine (a repetition never runs faster than
its code allows; it only runs slower when disturbed), with the cost of the medians beside it.
chain10: median of `--chain-runs` runs (default 100) ÷ 10 steps; threads200: median of 3 rounds
of 200 threads started to an interrupt and resumed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODES = ("absent", "api", "sdk")
WORKLOADS = ("chain10", "threads200")
CLOCKS = ("cpu", "wall")
START_MARK, END_MARK = "<!-- otel:start -->", "<!-- otel:end -->"
README = Path(__file__).parent / "README.md"
TARGET = 2.0
"""Percent of a run: the most hitl-async's telemetry may cost with the API installed and no
provider configured ("api")."""


# -- one measurement, in its own interpreter ------------------------------------------------------


def _block_opentelemetry() -> None:
    import importlib.abc

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ImportError(f"{name}: blocked (benchmark mode 'absent')")
            return None

    sys.meta_path.insert(0, Block())


def _install_sdk() -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class NoOpExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(NoOpExporter()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


def _setup(mode: str) -> None:
    if mode == "absent":
        _block_opentelemetry()
    elif mode == "api":
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401
    else:
        _install_sdk()


class _Clock:
    """Wall and CPU seconds (of this process, all its threads) since construction."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


async def _chain10(driver: str, runs: int) -> tuple[float, float]:
    """µs per superstep of chain10 (wall, CPU): medians over `runs` runs."""
    from benchmarks.stores import Servers, open_store
    from benchmarks.workloads import HITL, ChainState, chain_graph, hitl_engine, run_config

    engine = hitl_engine()
    async with open_store(HITL, driver, Servers()) as store:
        graph = chain_graph(engine, ChainState, 10, store.saver)
        for i in range(10):
            assert await graph.ainvoke({"x": 0}, run_config(f"warm-{i}")) == {"x": 10}
        walls, cpus = [], []
        for i in range(runs):
            clock = _Clock()
            out = await graph.ainvoke({"x": 0}, run_config(f"chain-{i}"))
            wall, cpu = clock.lap()
            assert out == {"x": 10}, out
            walls.append(wall)
            cpus.append(cpu)
    return statistics.median(walls) / 10 * 1e6, statistics.median(cpus) / 10 * 1e6


async def _threads200(driver: str, threads: int) -> tuple[float, float]:
    """Runs per second of threads200 (wall, CPU): medians of 3 rounds, each on a fresh store."""
    from benchmarks.stores import Servers, open_store
    from benchmarks.workloads import (
        HITL,
        approval_graph,
        concurrently,
        hitl_engine,
        resume_thread,
        start_thread,
    )

    engine = hitl_engine()

    async def round_on(graph: Any) -> tuple[float, float]:
        await concurrently(lambda i: start_thread(graph, f"w{i}", i), 20)
        await concurrently(lambda i: resume_thread(graph, engine, f"w{i}", i), 20)
        clock = _Clock()
        await concurrently(lambda i: start_thread(graph, f"t{i}", i), threads)
        await concurrently(lambda i: resume_thread(graph, engine, f"t{i}", i), threads)
        return clock.lap()

    walls, cpus = [], []
    for _ in range(3):
        async with open_store(HITL, driver, Servers()) as store:
            wall, cpu = await round_on(approval_graph(engine, store.saver))
        walls.append(2 * threads / wall)
        cpus.append(2 * threads / cpu)
    return statistics.median(walls), statistics.median(cpus)


def measure_main(argv: list[str]) -> None:
    """`python -m benchmarks.otel MODE DRIVER WORKLOAD [--chain-runs N] [--threads N]`: print
    the figures (wall, cpu) as JSON, and which OpenTelemetry modules were loaded."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.otel")
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("driver")
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--chain-runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=200)
    args = parser.parse_args(argv)
    _setup(args.mode)
    import hitl_async  # noqa: F401

    if args.driver != "memory":  # its client library may load OpenTelemetry itself (redis-py 8)
        __import__(f"hitl_async_{args.driver}")
    before = _otel_modules()
    if args.workload == "chain10":
        wall, cpu = asyncio.run(_chain10(args.driver, args.chain_runs))
    else:
        wall, cpu = asyncio.run(_threads200(args.driver, args.threads))
    loaded = _otel_modules()
    by_runs = sorted(set(loaded) - set(before))
    hooks = _hooks_ns() if args.mode != "sdk" else None
    print(
        json.dumps(
            {"wall": wall, "cpu": cpu, "otel_modules": loaded, "by_runs": by_runs, "hooks": hooks}
        )
    )


def _hooks_ns(rounds: int = 50_000) -> float:
    """ns per run that hitl-async's own telemetry calls cost when nothing records: deciding
    whether to trace (and naming the run for log records) at its start, and forgetting it at its
    end. The same calls, timed alone, so the figure is not lost in the noise of whole runs."""
    from benchmarks.workloads import ChainState, chain_graph, hitl_engine
    from hitl_async._run import Run
    from hitl_async.telemetry import end_log_run, trace_run

    graph = chain_graph(hitl_engine(), ChainState, 10, None)
    run = Run(graph, {"configurable": {"thread_id": "t"}})
    started = time.perf_counter()
    for _ in range(rounds):
        assert trace_run(run) is None
        end_log_run(run)
    return (time.perf_counter() - started) / rounds * 1e9


def _otel_modules() -> list[str]:
    return sorted({m.split(".")[1] for m in sys.modules if m.startswith("opentelemetry.")})


# -- the comparison -------------------------------------------------------------------------------


@dataclass
class Figures:
    """The samples of one workload on one driver, by mode and clock."""

    workload: str
    driver: str
    samples: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {m: {c: [] for c in CLOCKS} for m in MODES}
    )
    failures: dict[str, list[str]] = field(default_factory=lambda: {m: [] for m in MODES})
    hook_ns: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})

    def hooks(self, mode: str) -> float | None:
        """Median ns per run of hitl-async's telemetry calls alone (absent and api modes)."""
        values = self.hook_ns[mode]
        return statistics.median(values) if values else None

    def hooks_share(self, mode: str) -> float | None:
        """Percent of a run's CPU time (the best "absent" repetition) that those calls take."""
        hooks, best = self.hooks(mode), self.best("absent", "cpu")
        if hooks is None or not best:
            return None
        run_ns = best * 10 * 1000 if self.workload == "chain10" else 1e9 / best
        return hooks / run_ns * 100

    @property
    def unit(self) -> str:
        return "µs/step ↓" if self.workload == "chain10" else "runs/s ↑"

    def median_of(self, mode: str, clock: str) -> float | None:
        values = self.samples[mode][clock]
        return statistics.median(values) if values else None

    def best(self, mode: str, clock: str) -> float | None:
        """The best repetition: least time per step, most runs per second."""
        values = self.samples[mode][clock]
        if not values:
            return None
        return min(values) if self.workload == "chain10" else max(values)

    def cost(self, mode: str, clock: str, of: str = "best") -> float | None:
        """Percent more time than with OpenTelemetry absent (negative: less, i.e. noise), of
        the best repetitions or of the medians."""
        figure = self.best if of == "best" else self.median
        base, value = figure("absent", clock), figure(mode, clock)
        if base is None or value is None:
            return None
        ratio = value / base if self.workload == "chain10" else base / value
        return (ratio - 1) * 100


def _one(mode: str, driver: str, workload: str, chain_runs: int, threads: int) -> dict[str, Any]:
    """One measurement in a fresh interpreter: {"cpu", "wall"}, or {"error": reason}."""
    command = [sys.executable, "-m", "benchmarks.otel", mode, driver, workload]
    command += ["--chain-runs", str(chain_runs), "--threads", str(threads)]
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    try:
        done = subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 300 s"}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {done.returncode}"}
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    loaded, by_runs = out["otel_modules"], out["by_runs"]
    if (mode == "absent" and loaded) or (mode == "api" and "sdk" in by_runs):
        return {"error": f"mode {mode}: the runs loaded opentelemetry.{by_runs or loaded}"}
    return out


def _cells(rows: list[Figures]) -> list[list[str]]:
    def fmt(value: float | None, workload: str) -> str:
        if value is None:
            return "FAILED"
        return f"{value:,.1f}" if workload == "chain10" else f"{value:,.0f}"

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:+.1f} %"

    def ns(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f}"

    out = []
    for r in rows:
        share = r.hooks_share("api")
        verdict = "—" if share is None else ("met" if share <= TARGET else "missed")
        api = r.cost("api", "cpu")
        out.append(
            [
                r.workload,
                r.driver,
                r.unit,
                fmt(r.best("absent", "cpu"), r.workload),
                fmt(r.best("api", "cpu"), r.workload),
                pct(api),
                fmt(r.best("sdk", "cpu"), r.workload),
                pct(r.cost("sdk", "cpu")),
                f"{pct(r.cost('api', 'cpu', 'median'))} / {pct(r.cost('sdk', 'cpu', 'median'))}",
                f"{pct(r.cost('api', 'wall'))} / {pct(r.cost('sdk', 'wall'))}",
                f"{ns(r.hooks('absent'))} / {ns(r.hooks('api'))}",
                "—" if share is None else f"{share:.2f} %",
                verdict,
            ]
        )
    return out


HEADERS = [
    "workload",
    "driver",
    "unit (CPU)",
    "absent",
    "api, no provider",
    "cost",
    "sdk, no-op exporter",
    "cost",
    "cost of medians api / sdk",
    "wall-clock cost api / sdk",
    "hooks ns/run absent / api",
    "hooks share of a run (api)",
    f"target ≤ {TARGET:g} % (api)",
]


def markdown(payload: dict[str, Any], rows: list[Figures]) -> str:
    lines = [
        "### Tracing overhead",
        "",
        f"Command: `{payload['command']}`  ",
        f"Started {payload['started_at']}, took {payload['duration_s']:.0f} s; "
        f"{payload['reps']} repetition(s) per mode, interleaved, each in a fresh interpreter. "
        "Figures: the best repetition in CPU time of the process (the cost of the medians and "
        "the wall-clock cost of the best beside it). cost = how much more time than with "
        'OpenTelemetry "absent" (negative: less, i.e. noise). hooks = ns per run of '
        "hitl-async's own telemetry calls when nothing records (decide whether to trace, name "
        "the run for log records, forget it at its end), timed alone; their share of a run is "
        "what the target is judged on, since whole runs on this shared machine vary by more "
        "than the 2 % it allows.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * 9 + ["---"]) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _cells(rows)]
    failures = [
        f"- {r.workload}/{r.driver}/{mode}: {reasons[0]} (x{len(reasons)})"
        for r in rows
        for mode, reasons in r.failures.items()
        if reasons
    ]
    if failures:
        lines += ["", "Failures:", *failures]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    """`python -m benchmarks --otel ...`: measure, print, write otel.json and otel.md."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 170)
    given = argv if argv is not None else sys.argv[1:]
    explicit = any(a == "--drivers" or a.startswith("--drivers=") for a in given)
    drivers = args.drivers_list if explicit else ["memory", "sqlite"]
    reps = args.reps if args.reps_explicit else (2 if args.quick else 7)
    chain_runs, threads = (20, 40) if args.quick else (100, 200)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    rows = [Figures(w, d) for w in WORKLOADS for d in drivers]
    total = len(rows) * reps * len(MODES)
    done = 0
    for rep in range(reps):
        order = MODES[rep % len(MODES) :] + MODES[: rep % len(MODES)]
        for figures in rows:
            for mode in order:
                done += 1
                console.print(
                    f"[{done}/{total}] {figures.workload} · {figures.driver} · {mode}",
                    highlight=False,
                )
                out = _one(mode, figures.driver, figures.workload, chain_runs, threads)
                if "error" in out:
                    figures.failures[mode].append(str(out["error"]))
                    continue
                for clock in CLOCKS:
                    figures.samples[mode][clock].append(float(out[clock]))
                if out.get("hooks") is not None:
                    figures.hook_ns[mode].append(float(out["hooks"]))
    command = "python -m benchmarks " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    payload: dict[str, Any] = {
        "command": command.strip(),
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": time.perf_counter() - t0,
        "reps": reps,
        "chain_runs": chain_runs,
        "threads": threads,
        "rows": [
            {
                "workload": r.workload,
                "driver": r.driver,
                "unit": r.unit,
                "samples": r.samples,
                "failures": r.failures,
                "best": {m: {c: r.best(m, c) for c in CLOCKS} for m in MODES},
                "hooks_ns_per_run": {m: r.hooks(m) for m in MODES},
                "median": {m: {c: r.median_of(m, c) for c in CLOCKS} for m in MODES},
                "cost_percent": {
                    m: {c: r.cost(m, c) for c in CLOCKS} for m in MODES if m != "absent"
                },
            }
            for r in rows
        ],
    }
    table = Table(title="OpenTelemetry overhead (best of CPU time)", header_style="bold")
    for h in HEADERS:
        table.add_column(h)
    for row in _cells(rows):
        table.add_row(*row)
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "otel.json").write_text(json.dumps(payload, indent=2) + "\n")
    report = markdown(payload, rows)
    (args.out / "otel.md").write_text(report)
    if args.update_readme:
        text = README.read_text()
        head, sep, rest = text.partition(START_MARK)
        _, sep2, tail = rest.partition(END_MARK)
        if not sep or not sep2:
            raise SystemExit(f"{README} has no {START_MARK} ... {END_MARK} section")
        README.write_text(f"{head}{START_MARK}\n{report}{END_MARK}{tail}")
    console.print(f"wrote {args.out / 'otel.json'}, otel.md", highlight=False)
    return 1 if any(any(r.failures.values()) for r in rows) else 0


if __name__ == "__main__":
    measure_main(sys.argv[1:])
