"""`hitl serve` (the LangGraph API server) and the graphs-from-`langgraph.json` side of
`hitl worker --config`: both read a `langgraph.json` and share one store."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from hitl_async.cli._errors import UsageError, exit_code_for, one_line
from hitl_async.cli._load import DEFAULT_STORE, STORE_ENV, Store

__all__ = ["build_core", "register", "serve_worker"]

DEFAULT_CONFIG = "langgraph.json"


def _require_server_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import sse_starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"hitl serve needs the server extra ({exc.name} is missing): "
            "pip install 'hitl-async[server]'"
        ) from None


def build_core(config_path: str, store: Store) -> Any:
    """The `ServerCore` for a `langgraph.json` on `store` (graphs imported, stores not opened)."""
    from hitl_async import connect
    from hitl_async.errors import DriverNotFoundError, InvalidConfigError
    from hitl_async.server.config import ServeConfig, load_graphs
    from hitl_async.server.core import ServerCore
    from hitl_async.server.records import open_records
    from hitl_async.store.connect import connect_store

    try:
        config = ServeConfig.load(config_path)
    except InvalidConfigError as exc:
        raise UsageError(str(exc)) from None
    config.apply_environment()
    try:
        memory_options = config.store_options()
    except InvalidConfigError as exc:
        raise UsageError(str(exc)) from None
    try:
        saver = connect(store.url, **store.options)
        records = open_records(store.url, **store.options)
        memory = connect_store(store.url, **store.options, **memory_options)
    except (ValueError, TypeError, DriverNotFoundError) as exc:
        raise UsageError(f"--store {store.url}: {' '.join(str(exc).split())}") from None
    if not saver.supports_coordination:
        raise UsageError(f"--store {store.url}: the server needs a store with a run queue")
    try:
        graphs = load_graphs(config, saver, memory)
    except InvalidConfigError as exc:
        raise UsageError(str(exc)) from None
    core = ServerCore(graphs, saver, records, store=memory)
    core.config = config  # type: ignore[attr-defined]
    return core


def _authorizer(core: Any, token: str | None) -> Any:
    from hitl_async.server.auth import Authorizer
    from hitl_async.server.config import import_object

    config = core.config
    auth = None
    if config.auth_path:
        auth = import_object(config.auth_path, config.root)
        if not hasattr(auth, "_handlers"):
            raise UsageError(
                f"auth.path {config.auth_path!r} names a {type(auth).__name__}; expected a "
                "langgraph_sdk.Auth object"
            )
    if auth is not None and token is not None:
        raise UsageError("pass either --auth-token or auth.path in langgraph.json, not both")
    return Authorizer(auth=auth, token=token)


def register(app: typer.Typer) -> None:
    """Add `hitl serve` to the `hitl` command."""

    @app.command()
    def serve(
        ctx: typer.Context,
        config: Annotated[
            str, typer.Option("--config", "-c", help="The langgraph.json to serve.")
        ] = DEFAULT_CONFIG,
        store: Annotated[
            str | None,
            typer.Option(
                "--store",
                metavar="URL",
                help=f"Store URL [default: ${STORE_ENV} or {DEFAULT_STORE}].",
                show_default=False,
            ),
        ] = None,
        host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to bind.")] = 2024,
        workers: Annotated[
            int, typer.Option("--workers", min=1, help="Runs this process executes at once.")
        ] = 8,
        no_worker: Annotated[
            bool,
            typer.Option(
                "--no-worker",
                help="Execute no runs here (separate `hitl worker --config` processes do).",
            ),
        ] = False,
        auth_token: Annotated[
            str | None,
            typer.Option(
                "--auth-token",
                help="Require 'Authorization: Bearer TOKEN' [default: $HITL_AUTH_TOKEN].",
                show_default=False,
            ),
        ] = None,
        max_body: Annotated[
            int, typer.Option("--max-body", min=1024, help="Largest request body, bytes.")
        ] = 10 * 1024 * 1024,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    ) -> None:
        """Serve the graphs of a langgraph.json over LangGraph's HTTP API (for langgraph-sdk)."""
        root = ctx.find_root().obj
        store = store or getattr(root, "store", None)
        try:
            _require_server_extra()
            _serve(config, store, host, port, workers, no_worker, auth_token, max_body, log_level)
        except Exception as exc:
            sys.stderr.write(f"error: {one_line(exc)}\n")
            raise typer.Exit(exit_code_for(exc)) from None


def _serve(
    config: str,
    store: str | None,
    host: str,
    port: int,
    workers: int,
    no_worker: bool,
    auth_token: str | None,
    max_body: int,
    log_level: str,
) -> None:
    import uvicorn

    from hitl_async.server.app import create_app

    chosen = Store.resolve(store, None)
    core = build_core(config, chosen)
    authorizer = _authorizer(core, auth_token or os.environ.get("HITL_AUTH_TOKEN"))
    app = create_app(
        core,
        authorizer=authorizer,
        cors=core.config.cors,
        run_executor=not no_worker,
        concurrency=workers,
        max_body=max_body,
    )
    sys.stderr.write(
        f"hitl serve: {', '.join(core.graphs)} from {Path(config).resolve()} on "
        f"{chosen.url}; http://{host}:{port} (docs at /docs)"
        f"{'' if not no_worker else '; runs are executed by hitl worker processes'}\n"
    )
    sys.stderr.flush()
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="on")


async def serve_worker(config_path: str, store: Store, concurrency: int, poll: float) -> int:
    """`hitl worker --config langgraph.json`: execute the server's queued runs until signalled
    (first SIGINT/SIGTERM: finish the runs in progress; a second: cancel them)."""
    import signal

    from hitl_async.server.executor import RunExecutor

    core = build_core(config_path, store)
    await core.start()
    executor = RunExecutor(core, concurrency=concurrency, poll=poll)
    sys.stderr.write(
        f"worker {executor.owner}: executing runs of {', '.join(core.graphs)} on "
        f"{store.url} (concurrency {concurrency}); Ctrl-C to stop\n"
    )
    sys.stderr.flush()
    try:
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    stopping = False
                    async for _ in signals:
                        if stopping:
                            tg.cancel_scope.cancel()
                            return
                        stopping = True
                        executor.stop()

            tg.start_soon(stop_on_signal)
            await executor.run()
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await core.aclose()
    sys.stderr.write(f"worker stopped after {executor.processed} run(s)\n")
    return 0
