"""Re-record LangGraph's side of the ported agents into `goldens/` (CI needs no LangGraph).

    /work/lgvenv/bin/python tests/ported_agents/record_goldens.py [AGENT ...]

Run it with a Python that has langgraph 1.2.22, langgraph-checkpoint-sqlite and langchain-core.
"""

from __future__ import annotations

import json
import sys

from runner import AGENTS, HERE, run_agent


def main(names: list[str]) -> None:
    for name in names or sorted(p.stem for p in AGENTS.glob("*.py")):
        record = run_agent(name, "langgraph")
        path = HERE / "goldens" / f"{name}.json"
        path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"{path.name}: {len(record)} entries")


if __name__ == "__main__":
    main(sys.argv[1:])
