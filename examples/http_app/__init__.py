"""Expense approvals over HTTP: a Starlette app, a worker and the graph they share."""
