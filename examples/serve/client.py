"""A `langgraph-sdk` client of the served expenses graph: submit an expense, find it waiting
for review, approve it with an edited amount. `python examples/serve/client.py [URL]`."""

from __future__ import annotations

import sys

from langgraph_sdk import get_sync_client


def main(url: str = "http://127.0.0.1:2024") -> None:
    client = get_sync_client(url=url)
    thread = client.threads.create(metadata={"team": "field"})
    tid = thread["thread_id"]
    for part in client.runs.stream(
        tid,
        "expenses",
        input={"who": "ada", "amount": 420.0, "purpose": "a conference"},
        stream_mode="updates",
    ):
        if part.event == "updates":
            print("update:", part.data)
    waiting = client.threads.search(status="interrupted", metadata={"team": "field"})
    print("waiting for review:", [t["thread_id"] == tid for t in waiting])
    (interrupt,) = client.threads.get_state(tid)["interrupts"]
    edited = {"type": "edit", "args": {"action": "approve_expense", "args": {"amount": 380.0}}}
    final = client.runs.wait(tid, "expenses", command={"resume": {interrupt["id"]: [edited]}})
    print("final:", final)


if __name__ == "__main__":
    main(*sys.argv[1:])
