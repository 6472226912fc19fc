"""The compiled topology of a graph and the rule that folds a step's writes into the state."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hitl_async._checkpoint import TaskSpec
from hitl_async._schema import Field
from hitl_async.constants import END, NEXT, START
from hitl_async.errors import InvalidUpdateError
from hitl_async.types import Overwrite, overwritten

if TYPE_CHECKING:
    from hitl_async.graph.state import StateGraph

__all__ = ["Plan"]

_BARRIER = "__join__:"

_DEFERRED = "__join__:deferred"
"""Channel of deferred nodes (`add_node(..., defer=True)`) triggered while other tasks were
still to run: they run in the first step that would otherwise have no task."""


_GONE: Any = object()


def _fold_channel(
    f: Field, values: dict[str, Any], written: list[Any], *, strict: bool, source: str
) -> None:
    """Fold a step's writes to a key annotated with a channel class other than LastValue."""
    if f.kind == "topic":
        items = list(values.get(f.name, ())) if f.accumulate else []
        for v in written:  # a written list adds its items
            items.extend(v) if isinstance(v, list) else items.append(v)
        if items:
            values[f.name] = items
        else:  # an empty topic is no key of the state
            values.pop(f.name, None)
        return
    if len(written) > 1 and f.guard and strict:
        label = "EphemeralValue" if f.kind == "ephemeral" else "UntrackedValue"
        raise InvalidUpdateError(
            f"{source}: At key {f.name!r}: {label}(guard=True) can receive only one value per "
            f"step, got {len(written)}; use {label}(..., guard=False) to keep the last of them",
            f.name,
            f.kind,
        )
    values[f.name] = written[-1]


class Plan:
    """Edges resolved per node, join barriers, and reducers of the state keys."""

    def __init__(self, builder: StateGraph) -> None:
        self.fields = builder.schema.fields
        self.initials = {k: f.initial for k, f in self.fields.items() if f.has_initial}
        self.deferred = frozenset(name for name, spec in builder.nodes.items() if spec.defer)
        self.reducer_keys = frozenset(
            k for k, f in self.fields.items() if f.reducer is not None or f.kind == "topic"
        )
        """Keys whose value is not the value written (a reducer's fold, a topic's list)."""
        self.step_scoped = frozenset(
            k
            for k, f in self.fields.items()
            if f.kind == "ephemeral" or (f.kind == "topic" and not f.accumulate)
        )
        """Keys a step that does not write them clears (`EphemeralValue`, `Topic`)."""
        self.untracked = frozenset(k for k, f in self.fields.items() if f.kind == "untracked")
        """Keys never checkpointed (`UntrackedValue`)."""
        self.static_next: dict[str, list[str]] = {}
        for start, end in builder.edge_order:
            if end != END:
                self.static_next.setdefault(start, []).append(end)
        self.barriers: dict[str, tuple[frozenset[str], str]] = {}
        self.barriers_of: dict[str, list[str]] = {}
        for starts, end in builder.waiting_edges:
            channel = f"{_BARRIER}{end}:{','.join(sorted(set(starts)))}"
            self.barriers[channel] = (frozenset(starts), end)
            for s in set(starts):
                self.barriers_of.setdefault(s, []).append(channel)
        self.fixed_routes: dict[str, tuple[tuple[str, Any], ...]] = {
            node: (
                *((NEXT, t) for t in self.static_next.get(node, ())),
                *((b, node) for b in self.barriers_of.get(node, ())),
            )
            for node in [START, *builder.nodes]
            if node not in builder.branches
        }
        """The routing writes of nodes without conditional edges, computed once."""

    def state_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The state keys of `values` (no barriers); reducer keys default to their empty value."""
        initials = self.initials
        out: dict[str, Any] = {}
        for k in self.fields:  # in the schema's order, as LangGraph's channels
            if k in values:
                out[k] = values[k]
            elif k in initials:  # (initials are keys of fields)
                out[k] = copy.copy(initials[k])
        if not self.fields:
            out.update({k: v for k, v in values.items() if not k.startswith(_BARRIER)})
        return out

    def shows(self, changed: Iterable[str]) -> bool:
        """Whether channels a step changed include a state key (a `values` event is due)."""
        return any(not c.startswith(_BARRIER) for c in changed)

    def step_shows(
        self, changed: Iterable[str], writes: Iterable[tuple[str, list[tuple[str, Any]]]]
    ) -> bool:
        """Whether a step's `values` event is due: one of its tasks wrote a state key (as in
        LangGraph, keys the step merely cleared, `EphemeralValue`s and `Topic`s, do not count)."""
        if not self.step_scoped:
            return self.shows(changed)
        return any(c[:2] != "__" for _, ws in writes for c, _ in ws)

    def apply(
        self,
        values: dict[str, Any],
        items: Iterable[tuple[str, Any]],
        *,
        source: str,
        strict: bool = True,
    ) -> set[str]:
        """Fold state writes into `values` in order; return the keys that changed."""
        grouped: dict[str, list[Any]] = {}
        for key, value in items:
            grouped.setdefault(key, []).append(value)
        for key, written in grouped.items():
            f = self.fields.get(key)
            if f is not None and f.kind != "last":
                _fold_channel(f, values, written, strict=strict, source=source)
                continue
            if f is None or f.reducer is None:
                written = [
                    v.value if isinstance(v, Overwrite) else v for v in written
                ]  # nothing to bypass: the value itself
                if len(written) > 1 and strict:
                    raise InvalidUpdateError(
                        f"{source}: state key {key!r} received {len(written)} values in one step "
                        "but keeps only one; annotate it with a reducer, e.g. "
                        "Annotated[list, operator.add], to merge them",
                        key,
                    )
                values[key] = written[-1]
                continue
            replaced = False
            if key in values:
                current = values[key]
            elif f.has_initial:
                current = copy.copy(f.initial)
            else:
                current, written = written[0], written[1:]
                replaced, new_value = overwritten(current)
                current = new_value if replaced else current
            for value in written:
                is_overwrite, new_value = overwritten(value)
                if is_overwrite:
                    if replaced:
                        raise InvalidUpdateError(
                            f"{source}: state key {key!r}: Can receive only one Overwrite value "
                            "per super-step; only one write may replace a value per step",
                            key,
                            Overwrite,
                        )
                    current, replaced = new_value, True
                elif not replaced:
                    current = f.reducer(current, value)
            values[key] = current
        return set(grouped)

    def clear_unwritten(self, values: dict[str, Any], written: Iterable[str]) -> set[str]:
        """Clear the keys a step that ran without writing them clears (`EphemeralValue`, a
        `Topic` that does not accumulate); return those that had a value."""
        cleared = set()
        for key in self.step_scoped.difference(written):
            if values.pop(key, _GONE) is not _GONE:
                cleared.add(key)
        return cleared

    def derivable(self, items: list[tuple[str, Any]]) -> bool:
        """Whether the checkpoint a one-task step makes tells the task's writes by itself: it
        wrote each key once and none has a reducer, so the values of the channels the step
        changed are what it wrote (history reads them there; nothing is kept for it)."""
        if len(items) == 1:
            return items[0][0] not in self.reducer_keys
        keys = {k for k, _ in items}
        return len(keys) == len(items) and self.reducer_keys.isdisjoint(keys)

    def _hold_deferred(
        self, values: dict[str, Any], pulls: set[str], pushes: bool, changed: set[str]
    ) -> None:
        """Keep triggered deferred nodes waiting while other tasks are to run; release every
        waiting one (into `pulls`) in the first step that would otherwise have none."""
        waiting = set(values.get(_DEFERRED, ()))
        held = (pulls & self.deferred) | waiting
        if not held:
            return
        pulls -= self.deferred
        if pulls or pushes:
            if held != waiting:
                values[_DEFERRED] = sorted(held)
                changed.add(_DEFERRED)
            return
        pulls |= held
        if waiting:
            values.pop(_DEFERRED, None)
            changed.add(_DEFERRED)

    def step(
        self,
        values: dict[str, Any],
        task_writes: Iterable[tuple[str, list[tuple[str, Any]]]],
    ) -> tuple[set[str], list[TaskSpec]]:
        """Apply the writes of a finished step (in task order) and plan the next step's tasks.

        Returns the changed channels (state keys and barriers) and the next tasks as LangGraph
        lists them: `Send`s in the order they were made, then triggered nodes by name.
        """
        state_items: list[tuple[str, Any]] = []
        writers: list[str] = []
        pulls: set[str] = set()
        pushes: list[TaskSpec] = []
        barrier_hits: dict[str, list[str]] = {}
        barriers = self.barriers
        for source, writes in task_writes:
            for channel, value in writes:
                if channel == NEXT:
                    if type(value) is str:
                        pulls.add(value)
                    else:
                        pushes.append(TaskSpec(value.node, True, value.arg, value.timeout))
                elif channel in barriers:
                    barrier_hits.setdefault(channel, []).append(value)
                elif channel[:2] != "__":
                    state_items.append((channel, value))
                    writers.append(source)
        try:
            changed = self.apply(values, state_items, source="step")
            if self.step_scoped:
                changed |= self.clear_unwritten(values, changed)
        except InvalidUpdateError as exc:
            key = exc.args[1] if len(exc.args) > 1 else None
            nodes = [w for (k, _), w in zip(state_items, writers, strict=True) if k == key]
            if len(exc.args) > 2 and exc.args[2] is Overwrite:
                raise InvalidUpdateError(
                    f"Can receive only one Overwrite value per super-step: nodes {nodes} wrote "
                    f"state key {key!r} in the same step, more than one of them with Overwrite; "
                    "only one write may replace its value per step"
                ) from None
            if len(exc.args) > 2 and exc.args[2] in ("ephemeral", "untracked"):
                label = "EphemeralValue" if exc.args[2] == "ephemeral" else "UntrackedValue"
                raise InvalidUpdateError(
                    f"At key {key!r}: {label}(guard=True) can receive only one value per step "
                    f"(nodes {nodes} all wrote it); use {label}(..., guard=False) to keep the "
                    "last of them, or let one node write it"
                ) from None
            raise InvalidUpdateError(
                f"At key {key!r}: Can receive only one value per step (nodes {nodes} all wrote "
                "it); annotate it with a reducer, e.g. Annotated[list, operator.add], or let "
                "one node write it"
            ) from None
        for channel, hits in barrier_hits.items():
            starts, target = self.barriers[channel]
            seen = set(values.get(channel, ())) | set(hits)
            changed.add(channel)
            if seen >= starts:
                values.pop(channel, None)
                pulls.add(target)
            else:
                values[channel] = sorted(seen)
        pulls.discard(START)
        pulls.discard(END)
        if self.deferred:
            self._hold_deferred(values, pulls, bool(pushes), changed)
        return changed, pushes + [TaskSpec(n) for n in sorted(pulls)]
