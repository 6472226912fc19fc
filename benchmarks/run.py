"""`python -m benchmarks.run`: an alias of `python -m benchmarks` (same options)."""

from __future__ import annotations

import sys

from benchmarks.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
