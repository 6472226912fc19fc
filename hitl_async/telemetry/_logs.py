"""Structured logs: every record of hitl-async's loggers carries the thread id, run id and
checkpoint id of the run it was logged in (as `record.thread_id`, `record.run_id`,
`record.checkpoint_id`; None outside a run), and runs retrying writes through a store outage
log it once (`hitl_async.checkpoint.retry.OutageLog`, shared per store), not once per retry.

The run is remembered per task (a context variable, set when a run starts and put back when it
ends), so a driver logging from inside a store call gets the ids of the run that made it, a run
started inside a node names itself and then its caller's run again, and a record logged after
the run ended gets None.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from hitl_async.checkpoint.retry import OutageLog

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "LOG_FIELDS",
    "RunContextFilter",
    "end_log_run",
    "get_logger",
    "run_fields",
    "set_log_run",
    "store_outage",
]

LOG_FIELDS = ("thread_id", "run_id", "checkpoint_id")
"""The `extra` fields every record of a hitl-async logger has (use them in a format string:
`%(thread_id)s`, or read them in a JSON formatter)."""

_Entry = tuple["Callable[[], Any]", Any]
"""(a weak reference to the run, the entry of the run it started in, or None)."""
_RUN: ContextVar[_Entry | None] = ContextVar("hitl_async_log_run", default=None)


def set_log_run(run: Any) -> None:
    """Make `run` the one this task's log records name, until `end_log_run(run)`."""
    _RUN.set((weakref.ref(run), _RUN.get()))


def end_log_run(run: Any) -> None:
    """`run` ended: records name the run it was started in again (or none)."""
    entry = _RUN.get()
    if entry is not None and entry[0]() is run:
        _RUN.set(entry[1])


def run_fields(run: Any) -> tuple[str | None, str | None, str | None]:
    """(thread id, run id, checkpoint id) of a run: the run id is the queued request's id (set by
    the Worker in the config's metadata) or the config's `run_id`."""
    config = run.config
    metadata = config.get("metadata") or {}
    run_id = metadata.get("run_id", config.get("run_id"))
    return (
        run.thread_id,
        None if run_id is None else str(run_id),
        run.cp.checkpoint_id,
    )


class RunContextFilter(logging.Filter):
    """Adds `thread_id`, `run_id` and `checkpoint_id` to each record (values given in `extra`
    win); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        entry = _RUN.get()
        run = entry[0]() if entry is not None else None
        values: tuple[str | None, ...] = (None, None, None) if run is None else run_fields(run)
        for name, value in zip(LOG_FIELDS, values, strict=True):
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


_FILTER = RunContextFilter()


def get_logger(name: str) -> logging.Logger:
    """`logging.getLogger(name)` with the run context filter: the engine's and the drivers'
    loggers are made with it."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


_STORE_OUTAGES: weakref.WeakKeyDictionary[Any, OutageLog] = weakref.WeakKeyDictionary()


def store_outage(saver: Any, logger: logging.Logger) -> OutageLog:
    """The `OutageLog` of a checkpoint store, shared by every run retrying a write to it, so
    200 runs meeting one outage log it once (and once when it is over), not 600 times."""
    try:
        found = _STORE_OUTAGES.get(saver)
    except TypeError:  # neither hashable nor weakly referenceable: no sharing
        found = None
    if found is None:
        found = OutageLog(logger, f"runs on {type(saver).__name__}")
        with contextlib.suppress(TypeError):
            _STORE_OUTAGES[saver] = found
    return found
