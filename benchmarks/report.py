"""Results model, targets, and the outputs: a rich table, JSON, Markdown and a PNG chart."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.machine import machine_lines
from benchmarks.stores import DURABLE
from benchmarks.workloads import HITL_ONLY, MIB, UNITS, Result

ENGINES = ("hitl-async", "langgraph")


@dataclass
class Cell:
    """The repetitions of one engine (or the floor) on one workload and driver."""

    samples: list[Result] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: str | None = None
    not_applicable: str | None = None
    """Why this engine/driver has no such workload (shown as "—"; neither run nor failed)."""

    @property
    def runs(self) -> int:
        return len(self.samples) + len(self.failures)

    @property
    def median(self) -> float | None:
        return statistics.median(r.value for r in self.samples) if self.samples else None

    def detail(self, key: str) -> float | None:
        """Median of one detail figure over the repetitions that have it."""
        values = [r.detail[key] for r in self.samples if key in r.detail]
        return statistics.median(values) if values else None

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def status(self) -> str:
        """ "ok", "failed k/n: reason", "skipped: reason" or "n/a: reason"."""
        if self.not_applicable:
            return f"n/a: {self.not_applicable}"
        if self.skipped:
            return f"skipped: {self.skipped}"
        if self.failures:
            return f"FAILED {len(self.failures)}/{self.runs}: {self.failures[0]}"
        return "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "details": {
                k: self.detail(k) for k in (self.samples[0].detail if self.samples else {})
            },
            "samples": [asdict(r) for r in self.samples],
            "failures": self.failures,
            "skipped": self.skipped,
            "not_applicable": self.not_applicable,
        }


@dataclass
class Row:
    """One workload on one driver: both engines, the driver's raw floor, ratios and target."""

    workload: str
    driver: str
    hitl: Cell
    langgraph: Cell
    floor: Cell | None

    @property
    def unit(self) -> str:
        return UNITS[self.workload][0]

    @property
    def lower_is_better(self) -> bool:
        return UNITS[self.workload][1]

    @property
    def ratio(self) -> float | None:
        """hitl-async's advantage over LangGraph (> 1: hitl-async is better)."""
        h, lg = self.hitl.median, self.langgraph.median
        if h is None or lg is None or self.langgraph.failed or h <= 0 or lg <= 0:
            return None
        return lg / h if self.lower_is_better else h / lg

    @property
    def vs_floor(self) -> float | None:
        """hitl-async's per-superstep time over one raw committed write (chain10 only)."""
        if not self.workload.startswith("chain10") or self.floor is None:
            return None
        h, f = self.hitl.median, self.floor.median
        return h / f if h is not None and f else None

    def target(self) -> Verdict:
        """The target from the earlier issues for this row, the figure, and whether it is met."""
        rule = TARGETS.get((self.workload, self.driver))
        rule = rule or TARGETS.get((self.workload, "durable" if self.driver in DURABLE else ""))
        rule = rule or TARGETS.get((self.workload, "*"))
        if rule is None:
            return "", "", None
        return rule(self)

    def to_json(self) -> dict[str, Any]:
        text, got, met = self.target()
        return {
            "workload": self.workload,
            "driver": self.driver,
            "unit": self.unit,
            "lower_is_better": self.lower_is_better,
            "hitl-async": self.hitl.to_json(),
            "langgraph": self.langgraph.to_json(),
            "floor_us_per_write": None if self.floor is None else self.floor.to_json(),
            "ratio_vs_langgraph": self.ratio,
            "hitl_over_floor": self.vs_floor,
            "target": text,
            "target_got": got,
            "target_met": met,
        }


def _lg_ratio(row: Row, needed: float) -> tuple[bool | None, str]:
    if row.langgraph.skipped:
        return None, "LangGraph not run"
    r = row.ratio
    if r is None:
        return None, "LangGraph failed" if row.langgraph.failed else "no figure"
    return r >= needed, f"{fmt(r)}x"


def _combine(parts: list[bool | None]) -> bool | None:
    if any(p is False for p in parts):
        return False
    if any(p is None for p in parts):
        return None
    return True


Verdict = tuple[str, str, bool | None]
"""(the target, what was got, met: True / False / None when it cannot be judged)."""


def _at_most(share: int) -> Callable[[Row], Verdict]:
    """hitl-async at most 1/`share` of LangGraph's figure (lower is better)."""

    def rule(row: Row) -> Verdict:
        met, got = _lg_ratio(row, share)
        return f"≤ 1/{share} of LG", got, met

    return rule


def _chain_durable(share: int) -> Callable[[Row], Verdict]:
    def rule(row: Row) -> Verdict:
        met_lg, got = _lg_ratio(row, share)
        f = row.vs_floor
        met_floor = None if f is None else f <= 2
        floor_got = "floor n/a" if f is None else f"{fmt(f)}x floor"
        verdict = _combine([met_lg, met_floor])
        return f"≤ 1/{share} of LG and ≤ 2x floor", f"{got}, {floor_got}", verdict

    return rule


def _threads(row: Row) -> Verdict:
    met, got = _lg_ratio(row, 10)
    return "≥ 10x LG throughput", got, met


def _turns(row: Row) -> Verdict:
    drift = row.hitl.detail("drift")
    if drift is None:
        return "last-20 ≤ 1.2x first-20", "no figure", None
    return "last-20 ≤ 1.2x first-20", f"{drift:.2f}x", drift <= 1.2


def _store(row: Row) -> Verdict:
    if row.langgraph.not_applicable:
        return "≥ 3x LG", "no LangGraph store here", None
    met, got = _lg_ratio(row, 3)
    return "≥ 3x LG", got, met


def _tokens(row: Row) -> Verdict:
    """Per-token overhead of `stream_mode="messages"` at most 1/5 of LangGraph's (issue #13);
    compared directly, as an overhead near zero makes a ratio meaningless."""
    text = "≤ 1/5 of LG µs/token"
    if row.langgraph.skipped:
        return text, "LangGraph not run", None
    h, lg = row.hitl.median, row.langgraph.median
    if h is None or lg is None or row.langgraph.failed:
        return text, "LangGraph failed" if row.langgraph.failed else "no figure", None
    return text, f"{fmt(h)} vs {fmt(lg / 5)}", h <= lg / 5


NO_TARGET = "no numeric target"
"""A row the issues asked to measure without a target: the result column shows the figure."""


def _drain(row: Row) -> Verdict:
    h = row.hitl.median
    if h is None:
        return NO_TARGET, "no figure", None
    workers = row.hitl.detail("workers")
    by = f" by {workers:.0f} workers" if workers else ""
    return NO_TARGET, f"{fmt(h)} resumes/s{by}", None


def _big(row: Row) -> Verdict:
    b = row.hitl.median
    if b is None:
        return "≤ 1% of 1 MiB per step", "no figure", None
    return "≤ 1% of 1 MiB per step", f"{b / MIB * 100:.3f}%", b <= MIB / 100


TARGETS: dict[tuple[str, str], Callable[[Row], Verdict]] = {
    ("chain10", "memory"): _at_most(12),
    ("chain10", "durable"): _chain_durable(5),
    ("chain10-sync", "memory"): _at_most(10),
    ("chain10-def", "memory"): _at_most(5),
    ("chain10-sync", "durable"): _chain_durable(6),
    ("chain10-def", "durable"): _chain_durable(6),
    ("example1-sync", "sqlite"): _at_most(5),
    ("threads200", "*"): _threads,
    ("turns300", "*"): _turns,
    ("state1mb", "*"): _big,
    ("drain", "durable"): _drain,
    ("storeput", "*"): _store,
    ("storeget", "*"): _store,
    ("storesearch", "*"): _store,
    ("storemix", "*"): _store,
    ("tokens200", "*"): _tokens,
    ("tokens200-sync", "*"): _tokens,
}
"""Targets of issues #2, #4, #13 and #16, by (workload, driver or "durable" or "*"); the run-queue
issue's drain workload has none (its figure is shown as is)."""


# -- formatting ----------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    """A figure with sensible precision."""
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell_text(cell: Cell, markup: bool = False) -> str:
    """A cell's median, or why there is none ("—" when not applicable)."""
    if cell.not_applicable:
        return "—"
    if cell.skipped:
        return "not run"
    if cell.failures:
        why = f"FAILED {len(cell.failures)}/{cell.runs}: {cell.failures[0]}"
        if cell.median is not None:
            why = f"{fmt(cell.median)} ({why})"
        return f"[red]{why}[/red]" if markup else why
    return fmt(cell.median)


def notes(row: Row) -> str:
    """Secondary figures worth seeing next to the headline."""
    h, lg = row.hitl, row.langgraph
    if row.workload == "turns300":
        return (
            f"first/last-20 ms: hitl {fmt(h.detail('first20_ms'))}/{fmt(h.detail('last20_ms'))}, "
            f"LG {fmt(lg.detail('first20_ms'))}/{fmt(lg.detail('last20_ms'))}"
        )
    if row.workload == "latency":
        return (
            f"start/get/resume ms: hitl {fmt(h.detail('start_ms'))}/{fmt(h.detail('get_state_ms'))}"
            f"/{fmt(h.detail('resume_ms'))}, LG {fmt(lg.detail('start_ms'))}/"
            f"{fmt(lg.detail('get_state_ms'))}/{fmt(lg.detail('resume_ms'))}"
        )
    if row.workload == "rss1000":
        hk, lk = h.detail("kb_per_thread"), lg.detail("kb_per_thread")
        return f"KB/thread: hitl {fmt(hk)}, LG {fmt(lk)}"
    if row.workload == "chain10":
        return (
            f"B/step stored: hitl {fmt(h.detail('bytes/step'))}, LG {fmt(lg.detail('bytes/step'))}"
        )
    if row.workload.startswith("tokens200"):
        return (
            f"1st token ms: hitl {fmt(h.detail('ttft_ms'))}, LG {fmt(lg.detail('ttft_ms'))}; "
            f"µs per extra token: hitl {fmt(h.detail('marginal_us'))}, "
            f"LG {fmt(lg.detail('marginal_us'))}, langchain-core with a no-op handler "
            f"{fmt(h.detail('handler_floor_us'))}; run with 1 token ms: hitl "
            f"{fmt(h.detail('fixed_ms'))}, LG {fmt(lg.detail('fixed_ms'))}; model alone "
            f"{fmt(h.detail('model_us'))} µs/token"
        )
    if h.detail("floor") is not None:
        return _above_floor(row)
    if row.workload == "threads200":
        return (
            f"start+resume ms: hitl {fmt(h.detail('start_ms'))}+{fmt(h.detail('resume_ms'))}, "
            f"LG {fmt(lg.detail('start_ms'))}+{fmt(lg.detail('resume_ms'))}"
        )
    if row.workload == "state1mb":
        return f"ms/step: hitl {fmt(h.detail('ms/step'))}, LG {fmt(lg.detail('ms/step'))}"
    if row.workload == "drain":
        if h.not_applicable:
            return f"n/a: {h.not_applicable}"
        d = {k: _count(h.detail(k)) for k in ("requests", "workers", "concurrency")}
        share = f"{_count(h.detail('min_per_worker'))}/{_count(h.detail('max_per_worker'))}"
        return (
            f"{d['requests']} resumes, {d['workers']} worker processes x concurrency "
            f"{d['concurrency']}: drain {fmt(h.detail('drain_s'))} s, per worker min/max {share}; "
            f"enqueue {fmt(h.detail('enqueue_s'))} s ({fmt(h.detail('enqueue_per_s'))}/s); "
            f"spawn {fmt(h.detail('spawn_s'))} s; LG: {lg.not_applicable or lg.status()}"
        )
    return ""


def _above_floor(row: Row) -> str:
    """What each engine adds above the floor: the node functions called directly (and, for
    chain10 on a durable driver, one raw write per step)."""
    floor = row.hitl.detail("floor")
    assert floor is not None
    text = f"direct calls {fmt(floor)}"
    if row.workload.startswith("chain10") and row.floor is not None and row.floor.median:
        floor += row.floor.median
        text += f" + 1 write {fmt(row.floor.median)}"
    h, lg = row.hitl.median, row.langgraph.median
    above_h = "—" if h is None else fmt(h - floor)
    above_lg = "—" if lg is None else fmt(lg - floor)
    return f"floor: {text} {row.unit}; above it: hitl {above_h}, LG {above_lg}"


def _count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def ratio_text(row: Row) -> str:
    r = row.ratio
    return "—" if r is None else f"{fmt(r)}x"


def floor_text(row: Row) -> str:
    return "— (no I/O)" if row.floor is None else cell_text(row.floor)


def verdict_text(row: Row, markup: bool = False) -> str:
    """ "met (figure)", "NOT met (figure)", "n/a (why)", or "" without a target."""
    if row.hitl.not_applicable:
        return f"n/a ({row.hitl.not_applicable})"
    text, got, met = row.target()
    if not text:
        return ""
    if text == NO_TARGET:
        return got
    word = {True: "met", False: "NOT met", None: "n/a"}[met]
    if markup and met is not None:
        word = f"[green]{word}[/green]" if met else f"[red]{word}[/red]"
    return f"{word} ({got})"


HEADERS = [
    "workload",
    "driver",
    "unit",
    "hitl-async",
    "LangGraph",
    "hitl adv.",
    "floor µs",
    "target",
    "result",
]
"""Columns of the table; the Markdown report adds `notes`."""


def row_cells(row: Row, markup: bool = False) -> list[str]:
    """One table row's texts, in `HEADERS` order."""
    ratio = ratio_text(row)
    if markup and row.ratio is not None:
        ratio = f"[green]{ratio}[/green]" if row.ratio >= 1 else f"[red]{ratio}[/red]"
    return [
        row.workload,
        row.driver,
        row.unit + (" ↓" if row.lower_is_better else " ↑"),
        cell_text(row.hitl, markup),
        cell_text(row.langgraph, markup),
        ratio,
        floor_text(row),
        row.target()[0],
        verdict_text(row, markup),
    ]


# -- outputs -------------------------------------------------------------------------------------


def rich_table(rows: list[Row], title: str) -> Any:
    """The results as a rich Table, one section per workload."""
    from rich.table import Table

    table = Table(title=title, header_style="bold", caption=LEGEND)
    for h in HEADERS:
        table.add_column(h, overflow="fold", justify="right" if h in NUMERIC else "left")
    last = None
    for row in rows:
        if last is not None and last != row.workload:
            table.add_section()
        last = row.workload
        table.add_row(*row_cells(row, markup=True))
    return table


NUMERIC = {"hitl-async", "LangGraph", "hitl adv.", "floor µs"}
LEGEND = (
    "Medians. hitl adv. = how many times better hitl-async is than LangGraph (↓ lower is "
    "better, ↑ higher). floor µs = one committed write of hitl-async's chain10 step size "
    "through the driver's client library; chain10's result compares the per-step time to it."
)


def write_json(path: Path, payload: dict[str, Any], rows: list[Row]) -> None:
    data = {**payload, "rows": [r.to_json() for r in rows]}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def markdown(
    payload: dict[str, Any],
    rows: list[Row],
    chart: str | None,
    level: int = 1,
    method: bool = True,
) -> str:
    """The report as Markdown: command, machine, table, failures, and (optionally) the method.

    `level` is the heading level of its title (sections are one deeper).
    """
    h1, h2 = "#" * level, "#" * (level + 1)
    out = [
        f"{h1} hitl-async benchmark results",
        "",
        f"Command: `{payload['command']}`  ",
        f"Started {payload['started_at']}, took {payload['duration_s']:.0f} s; "
        f"{payload['settings']['reps']} repetition(s) per engine, interleaved"
        f"{' (--quick sizes)' if payload['settings']['quick'] else ''}.",
        "",
        *[f"- {line}" for line in machine_lines(payload["machine"])],
        "",
        LEGEND,
        "",
        "| " + " | ".join([*HEADERS, "notes"]) + " |",
        "|" + "|".join("---:" if h in NUMERIC else "---" for h in [*HEADERS, "notes"]) + "|",
    ]
    for row in rows:
        cells = [c.replace("|", "\\|") for c in [*row_cells(row), notes(row)]]
        out.append("| " + " | ".join(cells) + " |")
    failures = [
        f"- {r.workload} / {r.driver} / {name}: {cell.status()}"
        for r in rows
        for name, cell in (("hitl-async", r.hitl), ("langgraph", r.langgraph))
        if cell.failures
    ]
    out += ["", f"{h2} Failures", "", *(failures or ["None."])]
    if chart:
        out += ["", f"![hitl-async advantage per workload and driver]({chart})"]
    if method:
        out += ["", *(line.replace("## ", f"{h2} ", 1) for line in payload.get("method", []))]
    return "\n".join(out) + "\n"


def write_chart(path: Path, rows: list[Row], drivers: list[str], workloads: list[str]) -> None:
    """Bar charts: hitl-async's advantage per workload and driver; chain10 vs the floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = [w for w in workloads if w not in HITL_ONLY]  # no LangGraph figure to compare
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [3, 1.3]}, layout="constrained"
    )
    by = {(r.workload, r.driver): r for r in rows}
    width = 0.8 / max(1, len(drivers))
    colors = ["#4c72b0", "#55a868", "#c44e52", "#8172b2"]
    for j, driver in enumerate(drivers):
        xs, ys, fails = [], [], []
        for i, w in enumerate(workloads):
            row = by.get((w, driver))
            if row is None:
                continue
            x = i + (j - (len(drivers) - 1) / 2) * width
            if row.ratio is not None:
                xs.append(x)
                ys.append(row.ratio)
            elif row.hitl.failed:
                fails.append((x, "hitl\nfailed"))
            elif row.langgraph.failed:
                fails.append((x, "LG\nfailed"))
        bars = ax.bar(xs, ys, width, label=driver, color=colors[j % len(colors)])
        ax.bar_label(bars, labels=[fmt(y) for y in ys], fontsize=7, padding=1)
        for x, text in fails:
            ax.text(x, 1, text, ha="center", va="bottom", fontsize=7, color="red")
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_ylabel("hitl-async advantage over LangGraph (x, log)")
    ax.set_title("hitl-async vs LangGraph with its matching saver (> 1: hitl-async better)")
    ax.legend(title="driver")

    chain = [by[("chain10", d)] for d in drivers if ("chain10", d) in by]
    if chain:
        labels = [r.driver for r in chain]
        series = [
            ("hitl-async", [r.hitl.median or 0 for r in chain], "#4c72b0"),
            ("LangGraph", [r.langgraph.median or 0 for r in chain], "#dd8452"),
            ("floor (1 write)", [(r.floor.median if r.floor else 0) or 0 for r in chain], "#999"),
        ]
        w2 = 0.27
        for k, (name, values, color) in enumerate(series):
            xs = [i + (k - 1) * w2 for i in range(len(chain))]
            bars = ax2.bar(xs, values, w2, label=name, color=color)
            ax2.bar_label(bars, labels=[fmt(v) if v else "" for v in values], fontsize=7)
        ax2.set_xticks(range(len(chain)), labels)
        ax2.set_yscale("log")
        ax2.set_ylabel("µs per superstep / per write (log)")
        ax2.set_title("chain10 per superstep vs the raw floor")
        ax2.legend()
    else:
        ax2.axis("off")
    fig.savefig(path, dpi=110)
    plt.close(fig)
