"""Record LangGraph's answers to `differential_calls.run` (tests/store/golden/langgraph.json).

Run with LangGraph installed (not needed by the tests, which only read the file):

    /work/lgvenv/bin/python tests/store/make_golden.py [--check] [postgresql://postgres@127.0.0.1:5432/test]

`--check` compares a live run with the recording instead of writing it (exit status 1 if they
differ).

It runs the sequence on `langgraph.store.memory.InMemoryStore` and, given a PostgreSQL URL, on
`langgraph.store.postgres.PostgresStore` in a scratch database (without pgvector, so without
the semantic-search steps).
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import differential_calls
import langgraph.store.base as ops
from langgraph.store.memory import InMemoryStore

OUT = Path(__file__).parent / "golden" / "langgraph.json"


@contextlib.contextmanager
def postgres_stores(url: str) -> Iterator[Any]:
    import psycopg
    from langgraph.store.postgres import PostgresStore

    db = f"lg_golden_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {db}")
    stack = contextlib.ExitStack()
    try:
        base, _, _ = url.rpartition("/")

        def make(index: Any = None) -> Any:
            if index is not None:
                return None
            store = stack.enter_context(PostgresStore.from_conn_string(f"{base}/{db}"))
            store.setup()
            return store

        yield make
    finally:
        stack.close()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {db}")


def main() -> None:
    check = "--check" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--check"]
    tick = differential_calls.ticker()
    golden: dict[str, Any] = {
        "langgraph": version("langgraph"),
        "checkpoint": version("langgraph-checkpoint"),
    }
    golden["memory"] = differential_calls.run(
        lambda index=None: InMemoryStore(index=index), ops, tick
    )
    if args:
        with postgres_stores(args[0]) as make:
            golden["postgres"] = differential_calls.run(make, ops, tick)
    golden = json.loads(json.dumps(golden))
    if check:
        recorded = json.loads(OUT.read_text())
        same = all(recorded.get(k) == v for k, v in golden.items())
        print("the recording matches LangGraph" if same else "LangGraph now answers differently")
        sys.exit(0 if same else 1)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(golden, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
