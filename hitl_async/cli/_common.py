"""What every `hitl` command shares: its options (store, driver options, --debug, --json), the
options given before the command, and `execute`, which runs a command's body in a fresh event
loop and turns its errors into one line and a documented exit code."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import typer

from hitl_async.cli._errors import UsageError, exit_code_for, one_line
from hitl_async.cli._invocation import program
from hitl_async.cli._load import DEFAULT_STORE, STORE_ENV, Store

__all__ = [
    "DebugOpt",
    "Globals",
    "GraphArg",
    "JsonOpt",
    "OptionalGraphArg",
    "StoreOpt",
    "StoreOptionOpt",
    "ThreadOpt",
    "command_line",
    "execute",
    "parse_cursor",
    "report",
    "thread_config",
]

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help=f"Checkpoint store URL [default: ${STORE_ENV} or {DEFAULT_STORE}].",
        show_default=False,
    ),
]
StoreOptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--store-option",
        metavar="KEY=VALUE",
        help="Driver option (repeatable); VALUE is JSON when it parses, else text.",
        show_default=False,
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
ThreadOpt = Annotated[str, typer.Option("--thread", "-t", help="Thread id.", show_default=False)]
GraphArg = Annotated[
    str, typer.Argument(metavar="MODULE:GRAPH", help="Where the graph is, e.g. myapp.flows:graph.")
]
OptionalGraphArg = Annotated[
    str | None,
    typer.Argument(
        metavar="[MODULE:GRAPH]",
        help="Read through the graph (exact state); without it, from the store alone.",
        show_default=False,
    ),
]


@dataclass
class Globals:
    """`--store`, `--store-option` and `--debug` given before the command."""

    store: str | None = None
    options: list[str] = field(default_factory=list)
    debug: bool = False


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def report(exc: BaseException, debug: bool, then: str | None = None) -> int:
    """Report `exc` as one line on stderr (and its traceback with --debug); its exit code.
    `then` is the command's next step once a store that failed is back."""
    exc = _unwrap(exc)
    if debug:
        traceback.print_exception(exc)
    message = "interrupted" if isinstance(exc, KeyboardInterrupt) else one_line(exc, then)
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    return exit_code_for(exc)


def execute(
    ctx: typer.Context,
    store: str | None,
    store_option: list[str] | None,
    debug: bool,
    body: Callable[[Store], Awaitable[int | None]],
    *,
    then: Callable[[Store], str] | None = None,
) -> None:
    """Resolve the store, run `body` in a fresh event loop, turn errors into exit codes.

    `then(store)` says what to do once a store that failed is back (default: run the command
    again), e.g. how to continue the thread a run was on.
    """
    root = ctx.find_root().obj
    top = root if isinstance(root, Globals) else Globals()
    debug = debug or top.debug
    chosen: Store | None = None
    try:
        chosen = Store.resolve(store or top.store, [*top.options, *(store_option or [])])
        code = anyio.run(body, chosen)
    except (Exception, KeyboardInterrupt, BaseExceptionGroup) as exc:
        next_step = then(chosen) if then is not None and chosen is not None else None
        raise typer.Exit(report(exc, debug, next_step)) from None
    if code:
        raise typer.Exit(code)


def thread_config(thread: str) -> dict[str, Any]:
    """The run config of `thread`."""
    return {"configurable": {"thread_id": thread}}


def command_line(*words: str) -> str:
    """A `hitl` command as the user can type it here (`hitl`, or `.venv/bin/hitl` when PATH
    does not find it); `words` are already shell-quoted."""
    return " ".join([program(), *(w for w in words if w)])


def parse_cursor(
    text: str | None, option: str, what: str, fields: tuple[str, ...]
) -> list[str] | None:
    """The page cursor given to `option` (a JSON array of the strings `fields`, as the "cursor"
    field of --json output), or None; a UsageError naming the expected shape otherwise."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not (
        isinstance(value, list)
        and len(value) == len(fields)
        and all(isinstance(v, str) for v in value)
    ):
        shape = ", ".join(f'"{f}"' for f in fields)
        raise UsageError(
            f"{option} expects the cursor of the last {what} of the previous page: a JSON array "
            f'[{shape}] (the "cursor" field of --json output)'
        )
    return value
