"""A refund written with the functional API: a task charges the payment back, a human confirms
the refund, a task tells the customer. Run it: `python examples/refund_functional.py [--answer no]`.

The workflow pauses at the human's question and then resumes. On resume the entrypoint runs
again from its first line, but the charge-back task returns its kept result instead of charging
again; the ledger at the end shows the charge ran exactly once.
"""

from __future__ import annotations

import argparse
from typing import Any

from hitl_async import Command, InMemorySaver, interrupt
from hitl_async.func import entrypoint, task

LEDGER: list[str] = []
"""Stands in for the payment provider: every charge-back appends a line."""


@task
def charge_back(order_id: str, amount: float) -> str:
    """The side effect that must not happen twice: reverse the customer's payment."""
    LEDGER.append(f"charge-back {order_id} ${amount:.2f}")
    print(f"  [payments] charged back ${amount:.2f} for {order_id}")
    return f"cb-{order_id}"


@task
def notify_customer(email: str, message: str) -> str:
    """Tell the customer what happened."""
    print(f"  [email] to {email}: {message}")
    return "sent"


@entrypoint(checkpointer=InMemorySaver())
def refund(request: dict[str, Any]) -> dict[str, Any]:
    """Charge back, ask a human to confirm the refund, then notify the customer."""
    reference = charge_back(request["order_id"], request["amount"]).result()
    answer = interrupt(
        {
            "question": f"Charge-back {reference} is done. Refund ${request['amount']:.2f} "
            f"to {request['email']}?",
            "options": ["yes", "no"],
        }
    )
    if answer == "yes":
        status, message = "refunded", f"your refund of ${request['amount']:.2f} is on its way"
    else:
        status, message = "held", "your refund needs another review; we will be in touch"
    notify_customer(request["email"], message).result()
    return {"order_id": request["order_id"], "chargeback": reference, "status": status}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answer", default="yes", help="the human's answer (default: yes)")
    args = parser.parse_args()

    config = {"configurable": {"thread_id": "refund-1042"}}
    request = {"order_id": "A-1042", "amount": 49.90, "email": "ana@example.com"}

    print("Run 1: start the refund")
    for event in refund.stream(request, config):
        if "__interrupt__" in event:
            question = event["__interrupt__"][0].value
            print(f"  paused, asking a human: {question['question']} {question['options']}")
        else:
            print(f"  event: {event}")
    print(f"  waiting at: {refund.get_state(config).next}")

    print(f"Run 2: resume with the human's answer {args.answer!r}")
    for event in refund.stream(Command(resume=args.answer), config):
        print(f"  event: {event}")

    outcome = refund.get_state(config).values
    print(f"Outcome: {outcome['status']} (order {outcome['order_id']})")
    print(f"Ledger: {LEDGER}")
    print(f"Charge-back ran {len(LEDGER)} time(s): exactly once = {len(LEDGER) == 1}")


if __name__ == "__main__":
    main()
