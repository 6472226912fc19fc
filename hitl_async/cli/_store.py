"""`hitl store ...`: look into and edit the long-term memory store from the shell.

    hitl store namespaces [--prefix users.*] [--suffix memories] [--max-depth N] [--json]
    hitl store items NAMESPACE_PREFIX [--filter JSON] [--query TEXT] [--limit N] [--json]
    hitl store get NAMESPACE KEY [--json]
    hitl store put NAMESPACE KEY --value JSON [--ttl MINUTES]
    hitl store delete NAMESPACE KEY
    hitl store sweep

A namespace is written with its labels joined by dots (`users.alice.memories`; labels cannot
contain dots), "*" standing for any one label in --prefix/--suffix. The store is the same URL
as the checkpoints (`--store`, `$HITL_STORE`, `sqlite:///hitl.db`). Reading commands do not
refresh TTLs and never create a SQLite file.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
import typer

from hitl_async.cli._errors import NOT_FOUND, UsageError, exit_code_for, one_line
from hitl_async.cli._load import STORE_ENV, Store, missing_sqlite_store, parse_json
from hitl_async.cli._render import console, emit_json, when
from hitl_async.store import BaseStore, Item, connect_store
from hitl_async.store.errors import InvalidStoreRequestError, StoreValueError

__all__ = ["register", "store_app"]

store_app = typer.Typer(
    name="store",
    help="Look into and edit the long-term memory store (LangGraph's Store API).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

NamespaceArg = Annotated[
    str, typer.Argument(metavar="NAMESPACE", help="Labels joined by dots, e.g. users.alice.")
]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The item's key.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", metavar="URL", help=f"Store URL [default: ${STORE_ENV} or sqlite]."),
]
StoreOptionOpt = Annotated[
    list[str] | None,
    typer.Option("--store-option", metavar="KEY=VALUE", help="Driver option (repeatable)."),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]


def _namespace(text: str | None, flag: str, *, empty: bool = False) -> tuple[str, ...]:
    if text is None or text == "":
        if empty:
            return ()
        raise UsageError(f"{flag} is a namespace such as users.alice, got an empty value")
    return tuple(text.split("."))


def _sqlite_file(url: str) -> str | None:
    if not url.lower().startswith("sqlite:"):
        return None
    from hitl_async_sqlite import parse_url

    path, _ = parse_url(url)
    return None if path in ("", ":memory:") else path


def _run(
    ctx: typer.Context,
    store: str | None,
    store_option: list[str] | None,
    debug: bool,
    body: Callable[[BaseStore], Awaitable[int | None]],
    *,
    reading: bool = True,
) -> None:
    """Open the store, run `body`, turn errors into one line and an exit code."""
    top = ctx.find_root().obj
    debug = debug or bool(getattr(top, "debug", False))
    try:
        chosen = Store.resolve(
            store or getattr(top, "store", None),
            [*getattr(top, "options", []), *(store_option or [])],
        )

        async def main() -> int | None:
            path = _sqlite_file(chosen.url)
            if reading and path is not None and not os.path.exists(path):
                raise missing_sqlite_store(path)
            try:
                opened = connect_store(chosen.url, **chosen.options)
            except (ValueError, TypeError) as exc:
                raise UsageError(f"--store {chosen.url}: {one_line(exc)}") from exc
            try:
                return await body(opened)
            finally:
                await opened.aclose()

        code = anyio.run(main)
    except (Exception, KeyboardInterrupt) as exc:
        if isinstance(exc, InvalidStoreRequestError | StoreValueError):
            exc = UsageError(one_line(exc))
        if debug:
            traceback.print_exception(exc)
        sys.stderr.write(f"error: {one_line(exc)}\n")
        raise typer.Exit(exit_code_for(exc)) from None
    if code:
        raise typer.Exit(code)


def _row(item: Item) -> dict[str, Any]:
    row = item.dict()
    score = getattr(item, "score", None)
    if score is None:
        row.pop("score", None)
    return row


@store_app.command()
def namespaces(
    ctx: typer.Context,
    prefix: Annotated[
        str | None, typer.Option(help="Namespaces starting with these labels.")
    ] = None,
    suffix: Annotated[str | None, typer.Option(help="Namespaces ending with these labels.")] = None,
    max_depth: Annotated[int | None, typer.Option(min=1, help="Truncate to this depth.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many.")] = 0,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Namespaces that hold items, sorted."""

    async def body(st: BaseStore) -> int:
        found = await st.alist_namespaces(
            prefix=_namespace(prefix, "--prefix", empty=True) or None,
            suffix=_namespace(suffix, "--suffix", empty=True) or None,
            max_depth=max_depth,
            limit=limit,
            offset=offset,
        )
        if json_out:
            emit_json([list(ns) for ns in found])
        else:
            for ns in found:
                print(".".join(ns))
        return 0

    _run(ctx, store, store_option, debug, body)


@store_app.command()
def items(
    ctx: typer.Context,
    namespace_prefix: Annotated[
        str, typer.Argument(metavar="NAMESPACE_PREFIX", help="e.g. users.alice ('' for all).")
    ],
    filter: Annotated[
        str | None, typer.Option("--filter", help='JSON filter, e.g. \'{"n": {"$gt": 1}}\'.')
    ] = None,
    query: Annotated[
        str | None, typer.Option(help="Semantic query (stores with an index).")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many.")] = 10,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many.")] = 0,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Items under a namespace prefix, most recently updated first (TTLs are not refreshed)."""

    async def body(st: BaseStore) -> int:
        found = await st.asearch(
            _namespace(namespace_prefix, "NAMESPACE_PREFIX", empty=True),
            query=query,
            filter=parse_json(filter, "--filter"),
            limit=limit,
            offset=offset,
            refresh_ttl=False,
        )
        if json_out:
            emit_json([_row(item) for item in found])
            return 0
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for column in ("namespace", "key", "updated", "value"):
            table.add_column(column, overflow="fold")
        for item in found:
            import json

            text = json.dumps(item.value, ensure_ascii=False)
            text = text if len(text) <= 80 else text[:77] + "..."
            table.add_row(
                ".".join(item.namespace), item.key, when(item.updated_at.isoformat()), text
            )
        console().print(table if found else "no items")
        return 0

    _run(ctx, store, store_option, debug, body)


@store_app.command()
def get(
    ctx: typer.Context,
    namespace: NamespaceArg,
    key: KeyArg,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Print an item's value (exit code 3 when there is none)."""

    async def body(st: BaseStore) -> int:
        item = await st.aget(_namespace(namespace, "NAMESPACE"), key, refresh_ttl=False)
        if item is None:
            sys.stderr.write(f"error: no item {key!r} in namespace {namespace}\n")
            return NOT_FOUND
        emit_json(_row(item) if json_out else item.value)
        return 0

    _run(ctx, store, store_option, debug, body)


@store_app.command()
def put(
    ctx: typer.Context,
    namespace: NamespaceArg,
    key: KeyArg,
    value: Annotated[
        str, typer.Option("--value", help="The value: a JSON object, e.g. '{\"a\": 1}'.")
    ],
    ttl: Annotated[
        float | None, typer.Option(min=0.0, help="Expire after this many minutes.")
    ] = None,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Store a JSON object at NAMESPACE / KEY (replacing what is there)."""

    async def body(st: BaseStore) -> int:
        await st.aput(
            _namespace(namespace, "NAMESPACE"), key, parse_json(value, "--value"), ttl=ttl
        )
        return 0

    _run(ctx, store, store_option, debug, body, reading=False)


@store_app.command()
def delete(
    ctx: typer.Context,
    namespace: NamespaceArg,
    key: KeyArg,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Delete the item at NAMESPACE / KEY (exit code 3 when there is none)."""

    async def body(st: BaseStore) -> int:
        ns = _namespace(namespace, "NAMESPACE")
        if await st.aget(ns, key, refresh_ttl=False) is None:
            sys.stderr.write(f"error: no item {key!r} in namespace {namespace}\n")
            return NOT_FOUND
        await st.adelete(ns, key)
        return 0

    _run(ctx, store, store_option, debug, body)


@store_app.command()
def sweep(
    ctx: typer.Context,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Delete the items whose TTL has passed, now (workers and `hitl serve` also do this)."""

    async def body(st: BaseStore) -> int:
        print(f"deleted {await st.asweep_ttl()} expired items")
        return 0

    _run(ctx, store, store_option, debug, body)


def register(app: typer.Typer) -> None:
    """Add `hitl store ...` to the `hitl` command."""
    app.add_typer(store_app, name="store")
