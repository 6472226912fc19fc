"""Turning command-line text into engine objects: stores, `module:graph`, JSON, durations."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hitl_async import connect
from hitl_async.checkpoint.base import BaseSaver
from hitl_async.cli._errors import CliError, StoreMissingError, UsageError
from hitl_async.graph.compiled import CompiledStateGraph
from hitl_async.graph.state import StateGraph

__all__ = [
    "DEFAULT_STORE",
    "STORE_ENV",
    "Store",
    "load_graph",
    "missing_sqlite_store",
    "open_store",
    "parse_duration",
    "parse_json",
    "parse_store_options",
]

DEFAULT_STORE = "sqlite:///hitl.db"
STORE_ENV = "HITL_STORE"


@dataclass(frozen=True)
class Store:
    """Where the checkpoints are: a URL and the driver's keyword options."""

    url: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def resolve(cls, url: str | None, options: Sequence[str] | None) -> Store:
        """`--store`, else `$HITL_STORE`, else `sqlite:///hitl.db`; `--store-option`s parsed."""
        chosen = url or os.environ.get(STORE_ENV) or DEFAULT_STORE
        return cls(chosen, parse_store_options(options or ()))

    def flags(self) -> str:
        """The command-line flags that name this store again (for hints)."""
        import shlex

        parts = [f"--store {shlex.quote(self.url)}"]
        for key, value in self.options.items():
            text = value if isinstance(value, str) else json.dumps(value)
            parts.append(f"--store-option {shlex.quote(f'{key}={text}')}")
        return " ".join(parts)


def parse_store_options(items: Sequence[str]) -> dict[str, Any]:
    """`key=value` pairs; a value is taken as JSON when it parses (5, true), else as text."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--store-option expects KEY=VALUE, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, dict | list):
            value = raw
        options[key] = value
    return options


def parse_json(text: str | None, flag: str) -> Any:
    """The JSON value of `flag`; a usage error naming the flag when it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"{flag} is not valid JSON ({exc}); quote strings, e.g. {flag} '\"yes\"'"
        ) from None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str, flag: str) -> timedelta:
    """`7d`, `12h`, `1h30m`, `90s`, `2w` as a timedelta; a usage error otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise UsageError(
            f"{flag} expects a duration like 7d, 12h, 1h30m or 90s (units w, d, h, m, s), "
            f"got {text!r}"
        )
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def _sqlite_path(saver: BaseSaver) -> str | None:
    path = getattr(saver, "path", None)
    if type(saver).__name__ != "SqliteSaver" or not isinstance(path, str):
        return None
    return None if path in ("", ":memory:") else path


def missing_sqlite_store(path: str) -> StoreMissingError:
    """The error of a reading command pointed at a SQLite file that does not exist (exit code
    5, as for any store that cannot be opened)."""
    return StoreMissingError(
        f"no SQLite store at {path} (the file does not exist; a command that writes, such as "
        f"`hitl run` or `hitl demo`, creates it): pass --store URL or set ${STORE_ENV}"
    )


@contextlib.asynccontextmanager
async def open_store(store: Store, *, must_exist: bool = False) -> AsyncIterator[BaseSaver]:
    """A saver for `store`, closed on exit. A URL or option the driver refuses is a usage error.

    `must_exist`: a SQLite file that does not exist is an error (`StoreMissingError`) rather
    than created (reading commands should not leave an empty database behind).
    """
    try:
        saver = connect(store.url, **store.options)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--store {store.url}: {' '.join(str(exc).split())}") from exc
    try:
        path = _sqlite_path(saver)
        if must_exist and path is not None and not os.path.exists(path):
            raise missing_sqlite_store(path)
        yield saver
    finally:
        await saver.aclose()


def _import(module_name: str) -> Any:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise UsageError(
                f"no module named {module_name!r} (looked in the current directory and "
                "sys.path; set PYTHONPATH if it lives elsewhere)"
            ) from exc
        raise CliError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise CliError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc


def _describe(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    if callable(obj):
        try:
            signature = str(inspect.signature(obj))
        except (TypeError, ValueError):
            signature = "(...)"
        return f"a callable that needs arguments {signature}"
    text, kind = repr(obj), type(obj).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return f"{article} {kind} ({text[:60]}{'...' if len(text) > 60 else ''})"


def _as_graph(obj: Any, saver: BaseSaver) -> CompiledStateGraph | None:
    if isinstance(obj, CompiledStateGraph):
        return obj.with_checkpointer(saver)
    if isinstance(obj, StateGraph):
        return obj.compile(checkpointer=saver)
    return None


def load_graph(spec: str, saver: BaseSaver) -> CompiledStateGraph:
    """Import `module:attr` and return its graph compiled with (or rebound to) `saver`.

    `attr` (dots allowed) may be a `StateGraph`, a `CompiledStateGraph` or a zero-argument
    callable returning either; anything else is a usage error naming what was found.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"expected MODULE:GRAPH (e.g. myapp.flows:graph), got {spec!r}")
    obj: Any = _import(module_name)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    graph = _as_graph(obj, saver)
    if graph is not None:
        return graph
    expected = "a StateGraph, a CompiledStateGraph or a zero-argument callable returning one"
    if callable(obj) and not isinstance(obj, type) and _zero_args(obj):
        try:
            made = obj()
        except Exception as exc:
            raise CliError(f"calling {spec}() failed: {type(exc).__name__}: {exc}") from exc
        graph = _as_graph(made, saver)
        if graph is not None:
            return graph
        raise UsageError(f"{spec}() returned {_describe(made)}; expected {expected}")
    raise UsageError(f"{spec} is {_describe(obj)}; expected {expected}")


def _zero_args(fn: Any) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in signature.parameters.values()
    )
