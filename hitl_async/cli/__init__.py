"""`hitl`: run, inspect and answer human-in-the-loop graphs from the shell (`pip install
'hitl-async[cli]'`; also `python -m hitl_async.cli`).

    hitl demo [--answer yes|no] [--stop-at-pause | --resume-only --thread T]
    hitl run MODULE:GRAPH [--thread T] [--input JSON [--restart]]
    hitl resume MODULE:GRAPH --thread T --value JSON [--id ID]
    hitl inbox [--thread T] [--node N] [--graph NAME] [--limit N] [--after CURSOR]
    hitl show [MODULE:GRAPH] --thread T
    hitl history [MODULE:GRAPH] --thread T [--limit N]
    hitl threads [--limit N]
    hitl prune (--thread T | --all-threads) [--keep-last N] [--older-than 7d]
    hitl worker MODULE:GRAPH [--concurrency N] [--queue Q] [--max-attempts N] [--max-requests N]
    hitl runs [--status S] [--thread T] [--queue Q] [--limit N] [--before CURSOR]
    hitl runs show ID
    hitl serve [--config langgraph.json] [--host H] [--port P] [--workers N] [--no-worker]
    hitl worker --config langgraph.json [--concurrency N]   # runs queued by `hitl serve`

The store is `--store URL`, else `$HITL_STORE`, else `sqlite:///hitl.db` in the working
directory; driver options come from `--store-option KEY=VALUE` (repeatable) or the URL's query
string (`?schema=app`, `?prefix=app`). `--store`, `--store-option` and `--debug` are accepted
before the command too. Reading commands (inbox, show, history, threads, runs, prune) never
create a SQLite file. `inbox`, `show`, `history`, `threads`, `runs`, `run`, `resume` and `prune`
take `--json` (`worker --json` prints one JSON line per processed run).

`MODULE:GRAPH` is imported with the working directory on `sys.path`; `GRAPH` (dots allowed) is
a `StateGraph` (compiled with the store), a `CompiledStateGraph` (rebound to the store with
`with_checkpointer`) or a zero-argument callable returning either. `show` and `history` work
from the store alone; given `MODULE:GRAPH` they read through the graph instead (see
`hitl_async.cli._inspect` for what differs).

`hitl run` on a thread paused on an interrupt is refused (exit 4) naming the interrupt(s) and
the `hitl resume` command that answers them; `--restart` (with `--input`) starts over and drops
the pending question. Every command a message prints names the program as it can be typed where
it ran (`hitl`, `.venv/bin/hitl`, or `python -m hitl_async.cli`).

Exit codes, the same on every store: 0 ok; 1 runtime error (the graph raised); 2 usage error
(bad arguments or JSON, unknown module or graph, unknown store scheme); 3 not found (thread,
checkpoint, run request); 4 conflict (thread busy or paused on an interrupt, interrupt not
pending or unknown, ambiguous resume); 5 store unavailable (unreachable, no such database, file
or directory, read-only, full, locked); 6 store lost (deleted, emptied or replaced while in
use); 7 corrupt data (a damaged row or checkpoint); 130 interrupted. An error is one line on
stderr, `error: <message>` saying what to do in `hitl` terms; `--debug` adds the traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `hitl` command with `argv` (default: `sys.argv[1:]`); returns the exit code."""
    try:
        import typer
    except ImportError as exc:
        sys.stderr.write(
            f"error: the hitl command needs the cli extra ({exc}): pip install 'hitl-async[cli]'\n"
        )
        return 2
    from hitl_async.cli._app import app

    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args or ["--help"], prog_name="hitl", standalone_mode=False)
    except typer.Abort:
        sys.stderr.write("error: aborted\n")
        return 1
    except Exception as exc:
        code, message = getattr(exc, "exit_code", None), getattr(exc, "format_message", None)
        if not isinstance(code, int) or not callable(message):
            raise
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        text = " ".join(str(message()).split())
        sys.stderr.write(f"error: {text}{hint}\n")
        return code
    return result if isinstance(result, int) else 0
