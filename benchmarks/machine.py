"""What machine a benchmark ran on: CPU, memory, OS, Python, package and server versions,
printed above every table and stored with the results."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

__all__ = ["machine_info", "machine_lines"]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(servers: dict[str, str]) -> dict[str, Any]:
    """CPU, memory, OS, Python, package and server versions."""
    try:
        import psutil

        memory_gb: float | None = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory_gb = None
    packages = [
        "hitl-async",
        "hitl-async-sqlite",
        "hitl-async-postgres",
        "hitl-async-redis",
        "langgraph",
        "langgraph-checkpoint",
        "langgraph-checkpoint-sqlite",
        "langgraph-checkpoint-postgres",
        "langgraph-checkpoint-plainredis",
        "aiosqlite",
        "asyncpg",
        "psycopg",
        "redis",
    ]
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "servers": servers,
        "packages": {p: _version(p) for p in packages},
    }


def machine_lines(machine: dict[str, Any]) -> list[str]:
    """Machine info as short lines."""
    pk = {k: v for k, v in machine["packages"].items() if v}
    return [
        f"CPU: {machine['cpu_count']} x {machine['cpu_model']}; memory {machine['memory_gb']} GB",
        f"OS: {machine['platform']}; Python {machine['python']}; load average at start "
        + "/".join(str(x) for x in machine.get("load_average_at_start", [])),
        "Servers: "
        + (", ".join(f"{k} {v}" for k, v in machine["servers"].items()) or "none (memory only)"),
        "Packages: " + ", ".join(f"{k} {v}" for k, v in pk.items()),
    ]
