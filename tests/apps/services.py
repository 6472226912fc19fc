"""Where the test servers are, and how tests that need them skip (or, in CI, fail).

PostgreSQL and Redis tests talk to real servers (HITL_TEST_POSTGRES_URL, HITL_TEST_REDIS_URL,
defaulting to the local ones). Without a server those tests are skipped with the reason, except
under CI=true, where a missing service fails the run.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get("HITL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HITL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1.0):
            return True
    except OSError:
        return False


def unavailable(reason: str) -> None:
    """Skip the test for a missing part of the environment, or under CI=true fail it: CI
    provides everything, so there a skip would hide a test that never ran."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # also before a test module's imports


def require_service(name: str, url: str) -> None:
    """Skip (or, in CI, fail) when the server behind `url` is not reachable."""
    if _reachable(url):
        return
    unavailable(f"{name} is not reachable at {url}; start it or set HITL_TEST_{name.upper()}_URL")


def require_package(module: str, install: str) -> None:
    """Skip (or, in CI, fail) when a driver package is not installed."""
    try:
        __import__(module)
    except ImportError:
        unavailable(f"{module} is not installed: pip install -e {install}")
