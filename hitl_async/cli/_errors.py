"""Exit codes and the one-line error messages of the `hitl` command."""

from __future__ import annotations

from hitl_async.errors import (
    CheckpointConflictError,
    DriverNotFoundError,
    EmptyInputError,
    HitlError,
    InvalidConfigError,
    LeaseLostError,
    NoPendingInterruptError,
    ResumeError,
    ThreadBusyError,
)

__all__ = [
    "CONFLICT",
    "EXIT_CODES",
    "INTERRUPTED",
    "NOT_FOUND",
    "OK",
    "RUNTIME",
    "USAGE",
    "CliError",
    "NotFoundError",
    "UsageError",
    "exit_code_for",
    "one_line",
]

OK = 0
RUNTIME = 1
USAGE = 2
NOT_FOUND = 3
CONFLICT = 4
INTERRUPTED = 130

EXIT_CODES = {
    OK: "ok",
    RUNTIME: "runtime error (the graph raised, the store failed)",
    USAGE: "usage error (bad arguments or JSON, unknown module or graph, unknown store scheme)",
    NOT_FOUND: "not found (thread, checkpoint or SQLite file)",
    CONFLICT: "conflict (thread busy, interrupt not pending or unknown, ambiguous resume)",
}


class CliError(Exception):
    """An error the CLI reports as one line with its own exit code."""

    code = RUNTIME


class UsageError(CliError):
    """Bad arguments: exit code 2."""

    code = USAGE


class NotFoundError(CliError):
    """The thread (or store file) does not exist: exit code 3."""

    code = NOT_FOUND


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of an exception that ends a command."""
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, NoPendingInterruptError) and not exc.exists:
        return NOT_FOUND
    if isinstance(exc, EmptyInputError):
        return NOT_FOUND
    if isinstance(exc, ResumeError | ThreadBusyError | CheckpointConflictError | LeaseLostError):
        return CONFLICT
    if isinstance(exc, DriverNotFoundError | InvalidConfigError):
        return USAGE
    return RUNTIME


def one_line(exc: BaseException) -> str:
    """`exc` as a single line: its message (with the type when it is not one of ours)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, CliError | HitlError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
