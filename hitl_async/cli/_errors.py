"""Exit codes and the one-line error messages of the `hitl` command.

One exit code per kind of failure, the same on every driver; messages say what to do with `hitl`
commands (never Python advice such as `stream(None, config)`).
"""

from __future__ import annotations

from hitl_async.errors import (
    CheckpointConflictError,
    CheckpointCorruptError,
    CorruptRecordError,
    DecryptionError,
    DriverNotFoundError,
    EmptyInputError,
    HitlError,
    InvalidConfigError,
    LeaseLostError,
    NoPendingInterruptError,
    ResumeError,
    StoreLostError,
    StoreUnavailableError,
    ThreadBusyError,
)

__all__ = [
    "CONFLICT",
    "CORRUPT",
    "EXIT_CODES",
    "INTERRUPTED",
    "NOT_FOUND",
    "OK",
    "RUNTIME",
    "STORE_LOST",
    "STORE_UNAVAILABLE",
    "USAGE",
    "CliError",
    "ConflictError",
    "NotFoundError",
    "StoreMissingError",
    "UsageError",
    "exit_code_for",
    "one_line",
    "store_message",
]

OK = 0
RUNTIME = 1
USAGE = 2
NOT_FOUND = 3
CONFLICT = 4
STORE_UNAVAILABLE = 5
STORE_LOST = 6
CORRUPT = 7
INTERRUPTED = 130

EXIT_CODES = {
    OK: "ok",
    RUNTIME: "runtime error (the graph raised; a module failed to import)",
    USAGE: "usage error (bad arguments or JSON, unknown module or graph or store scheme)",
    NOT_FOUND: "not found (thread, checkpoint, run request)",
    CONFLICT: "conflict (thread busy or paused on an interrupt, interrupt not pending)",
    STORE_UNAVAILABLE: "store unavailable (unreachable, no such database or file, read-only)",
    STORE_LOST: "store lost (deleted, emptied or replaced while in use)",
    CORRUPT: "corrupt data (a stored checkpoint or row is damaged)",
}


class CliError(Exception):
    """An error the CLI reports as one line with its own exit code."""

    code = RUNTIME


class UsageError(CliError):
    """Bad arguments: exit code 2."""

    code = USAGE


class NotFoundError(CliError):
    """The thread (or run request) does not exist: exit code 3."""

    code = NOT_FOUND


class ConflictError(CliError):
    """The thread is not in a state that allows the command (paused, busy): exit code 4."""

    code = CONFLICT


class StoreMissingError(CliError):
    """A reading command named a SQLite file that does not exist: exit code 5, as for any other
    store that cannot be opened (a missing PostgreSQL database, an unreachable server)."""

    code = STORE_UNAVAILABLE


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of an exception that ends a command."""
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, StoreUnavailableError):
        return STORE_UNAVAILABLE
    if isinstance(exc, StoreLostError):
        return STORE_LOST
    if isinstance(exc, CheckpointCorruptError | CorruptRecordError | DecryptionError):
        return CORRUPT
    if isinstance(exc, NoPendingInterruptError) and not exc.exists:
        return NOT_FOUND
    if isinstance(exc, EmptyInputError):
        return NOT_FOUND
    if isinstance(exc, ResumeError | ThreadBusyError | CheckpointConflictError | LeaseLostError):
        return CONFLICT
    if isinstance(exc, DriverNotFoundError | InvalidConfigError):
        return USAGE
    return RUNTIME


def store_message(exc: StoreUnavailableError | StoreLostError, then: str | None = None) -> str:
    """A store failure in command-line terms: what happened and what to do next.

    `then` is the command's own next step once the store is back (e.g. how to continue the
    thread); without it, "run the command again".
    """
    if isinstance(exc, StoreLostError):
        return (
            f"checkpoint store {exc.store} is lost: {exc.cause}. The threads it held are not "
            "there any more and nothing was written: restore it from a backup, or pass the "
            "right --store (a new store starts empty)"
        )
    again = then or "run the command again"
    fix = "once it is back," if exc.transient else "fix it, then"
    tried = f" (tried {exc.attempts} times)" if exc.attempts > 1 else ""
    return (
        f"checkpoint store {exc.store} is unavailable{tried}: {exc.cause}. Nothing was "
        f"half-written: {fix} {again}"
    )


def one_line(exc: BaseException, then: str | None = None) -> str:
    """`exc` as a single line: its message (with the type when it is not one of ours); store
    failures in command-line terms (see `store_message`)."""
    if isinstance(exc, StoreUnavailableError | StoreLostError):
        return " ".join(store_message(exc, then).split())
    text = " ".join(str(exc).split())
    if isinstance(exc, CliError | HitlError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
