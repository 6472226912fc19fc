"""`connect(url)`: pick a checkpoint driver by URL scheme.

Drivers are separate distributions that register a factory under the entry-point group
`hitl_async.drivers`; the entry point's name is the URL scheme (aliases are just more entry points,
e.g. `postgres` and `postgresql`) and its value a callable `factory(url, **options) -> BaseSaver`.
Only `memory://` is built in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from hitl_async.checkpoint.base import BaseSaver
from hitl_async.checkpoint.memory import InMemorySaver
from hitl_async.errors import DriverNotFoundError

__all__ = ["ENTRY_POINT_GROUP", "connect"]

ENTRY_POINT_GROUP = "hitl_async.drivers"

DriverFactory = Callable[..., BaseSaver]

# scheme -> the distribution that provides it, for the "what to install" hint.
KNOWN_DRIVERS: dict[str, str] = {
    "sqlite": "hitl-async-sqlite",
    "postgresql": "hitl-async-postgres",
    "postgres": "hitl-async-postgres",
    "redis": "hitl-async-redis",
    "rediss": "hitl-async-redis",
}


def _memory(url: str, **options: Any) -> BaseSaver:
    """The built-in `memory://` driver: a fresh `InMemorySaver` (it takes no options)."""
    if options:
        raise TypeError(f"memory:// takes no options, got {sorted(options)}")
    return InMemorySaver()


BUILTIN_DRIVERS: dict[str, DriverFactory] = {"memory": _memory}


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    """Installed driver entry points by scheme (first one wins); looked up once per process."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name.lower(), ep)
    return found


@functools.cache
def _load(scheme: str) -> DriverFactory:
    """Import the factory of an installed scheme (cached)."""
    ep = _entry_points()[scheme]
    try:
        factory = ep.load()
    except Exception as exc:
        raise DriverNotFoundError(
            f"the driver for {scheme}:// ({ep.value}) is installed but failed to import: {exc!r}"
        ) from exc
    if not callable(factory):
        raise DriverNotFoundError(f"the {scheme}:// driver entry point {ep.value} is not callable")
    return factory  # type: ignore[no-any-return]


def installed_schemes() -> list[str]:
    """Every URL scheme `connect()` accepts here, built-in ones included, sorted."""
    return sorted(set(BUILTIN_DRIVERS) | set(_entry_points()))


def _not_found(scheme: str) -> DriverNotFoundError:
    installed = ", ".join(installed_schemes())
    package = KNOWN_DRIVERS.get(scheme)
    if package is not None:
        hint = f"Install its driver: pip install {package}"
    else:
        known: dict[str, list[str]] = {}
        for name, dist in KNOWN_DRIVERS.items():
            known.setdefault(dist, []).append(name)
        hint = "Drivers exist for " + "; ".join(
            f"{'/'.join(names)} (pip install {dist})" for dist, names in known.items()
        )
    return DriverNotFoundError(
        f"no hitl-async driver handles the URL scheme {scheme!r}. "
        f"Installed schemes: {installed}. {hint}."
    )


def connect(url: str, **options: Any) -> BaseSaver:
    """A checkpoint saver for `url`, chosen by its scheme; returned at once, with no I/O.

    The saver connects lazily on first use; call `await saver.setup()` (or use `async with`) to
    create its schema up front and `await saver.aclose()` when done. `options` go to the driver.

    >>> connect("memory://")                       # doctest: +ELLIPSIS
    <hitl_async.checkpoint.memory.InMemorySaver object at ...>

    Raises `DriverNotFoundError` (naming the installed schemes and the package to install) when
    no driver handles the scheme.
    """
    scheme, sep, _ = url.partition(":")
    scheme = scheme.strip().lower()
    if not sep or not scheme:
        raise DriverNotFoundError(
            f"connect() needs a URL such as sqlite:///app.db or memory://; the value has no "
            f"scheme. Installed schemes: {', '.join(installed_schemes())}."
        )
    builtin = BUILTIN_DRIVERS.get(scheme)
    if builtin is not None:
        return builtin(url, **options)
    if scheme not in _entry_points():
        raise _not_found(scheme)
    return _load(scheme)(url, **options)
