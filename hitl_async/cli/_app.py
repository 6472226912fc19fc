"""The `hitl` command (typer): the one `app` every command module registers on. Each command
runs its own event loop (`anyio.run`) and closes the store's saver before it returns; errors end
it with one line and a documented exit code (`hitl_async.cli._errors`)."""

from __future__ import annotations

import typer

from hitl_async.cli import _maintenance, _reading, _running, _runs, _serve, _store, _worker
from hitl_async.cli._common import DebugOpt, Globals, StoreOpt, StoreOptionOpt
from hitl_async.cli._errors import EXIT_CODES, INTERRUPTED
from hitl_async.cli._load import DEFAULT_STORE, STORE_ENV

__all__ = ["app"]

EPILOG = (
    f"Store: --store URL, else ${STORE_ENV}, else {DEFAULT_STORE} (a file in the working "
    "directory): sqlite:///rel.db, sqlite:////abs.db, postgresql://..., redis://..., or "
    "memory:// (one process only). Driver options: --store-option KEY=VALUE (repeatable) or the "
    "URL's query string.\n\n"
    "MODULE:GRAPH is imported with the working directory on sys.path; GRAPH is a StateGraph, a "
    "CompiledStateGraph (rebound to the store) or a zero-argument function returning one.\n\n"
    "\b\nExit codes (the same on every store):\n"
    + "".join(f"  {code:<4}{text}\n" for code, text in EXIT_CODES.items())
    + f"  {INTERRUPTED:<4}interrupted (Ctrl-C)\n\n"
    "Errors are one line on stderr (error: ...); --debug adds the traceback."
)

app = typer.Typer(
    name="hitl",
    help="Run, inspect and answer human-in-the-loop graphs of hitl-async from the shell.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run, inspect and answer human-in-the-loop graphs of hitl-async from the shell."""
    ctx.obj = Globals(store, list(store_option or []), debug)


for _module in (_running, _reading, _maintenance, _worker, _runs, _serve, _store):
    _module.register(app)
