"""The ``transitions`` machine, built from a rulebook and nothing else.

One definition-only machine per binary (``model=None``) serves every service
of that binary: firing ``machine.events[name].trigger(service)`` costs the same
as a single-model machine and adds no memory per service, unlike ``add_model``
or ``LockedMachine`` (see docs/decisions.md). The engine holds its own lock.
The machine is a ``FrozenMachine`` (statecore/frozen.py): the rulebook never
changes once built, so its events dispatch from a compiled table instead of
walking transitions' callback lists, which statecore leaves empty.

Firing is the engine's hot path, so each row is compiled once into a ``Step``
(its destination, notification type and actions, looked up per event
otherwise). The machine returns the row that fired (``FrozenEvent.fire``), and
what a refusal says is derived from the rulebook once, when the machine is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from transitions import Machine

from statecore.frozen import FrozenEvent, FrozenMachine
from statecore.guards import Context, Predicate
from statecore.table import Action, Event, Guard, Priority, Rule, Rulebook, State

Route = tuple[tuple[tuple[Callable[..., Any], bool], ...], str, "Step"]
"""A compiled row as ``LifecycleMachine.fire`` reads it: (conditions, destination state name, its Step)."""
MODEL_ATTRIBUTE = "fsm_state"
"""Where transitions keeps its plain-string state: string states dispatch faster than Enum ones."""


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """A row of the table with what the engine derives from it precomputed (compared by identity)."""

    rule: Rule
    dest: State
    event_type: str
    priority: Priority
    actions: tuple[Action, ...]
    """The row's own effects, then the destination's ``on_enter`` actions, in the table's order."""
    guard_label: str | None


class LifecycleMachine:
    def __init__(
        self, book: Rulebook, predicates: dict[Guard, Predicate], *, machine_class: type[Machine] = FrozenMachine
    ) -> None:
        """``machine_class``: any ``Machine`` whose events have ``fire`` (the benchmarks compare a stock one)."""
        self.book = book
        self.machine = machine_class(
            model=None,
            states=[state.value for state in State],
            initial=State.STARTING.value,
            transitions=[_transition(rule, predicates) for rule in book.rules],
            auto_transitions=False,
            model_attribute=MODEL_ATTRIBUTE,
        )
        self._events = {event: cast(FrozenEvent, self.machine.events[event.value]) for event in Event}
        """Each event's object, whose ``fire`` returns the row that fired (a stock one gets it from the benchmark)."""
        self._steps: dict[int, Step] = {}
        """Keyed by the identity of the machine's own row: one dict hit tells which rule fired."""
        for source, event in dict.fromkeys((rule.source, rule.event) for rule in book.rules):
            rows = self._events[event].transitions[source.value]  # in the table's order, as added
            for row, rule in zip(rows, book.rules_for(source, event), strict=True):
                self._steps[id(row)] = _step(book, rule)
        self._routes = self._compile_routes()
        self.allowed = {state: book.allowed_events(state) for state in State}
        self._refusals = {
            (rule.source, rule.event): "no guard holds: "
            + ", ".join(book.guard(r.guard).label for r in book.rules_for(rule.source, rule.event) if r.guard)
            for rule in book.rules
        }

    def _compile_routes(self) -> dict[tuple[Event, str], tuple[Route, ...]]:
        """Per (event, state name), the frozen machine's compiled rows (``FrozenEvent.freeze``) with
        the ``Step`` of each: firing reads them in one dict hit, where going through the event
        object costs two calls and a look-up of the row. Empty for a stock machine."""
        routes: dict[tuple[Event, str], tuple[Route, ...]] = {}
        if self.machine.send_event:  # its conditions take an EventData: its own events fire
            return routes
        for event, fired in self._events.items():
            for source, rows in (getattr(fired, "_routes", None) or {}).items():
                if all(dest is not None for _, _, dest in rows):  # an internal row: its event fires it
                    routes[event, source] = tuple((conds, dest, self._steps[id(row)]) for row, conds, dest in rows)
        return routes

    def fire(self, model: object, event: Event, ctx: Context) -> Step | None:
        """Run the event on ``model`` (with ``state`` and ``fsm_state``); returns the row that fired,
        or None if no guard held. An event with no row from the state raises ``MachineError``
        (the machine's own event says so, as it does for a stock machine)."""
        rows = self._routes.get((event, model.fsm_state))  # type: ignore[attr-defined]
        if rows is None:
            return self._fire_event(model, event, ctx)
        for conditions, dest, step in rows:  # FrozenEvent.fire's loop, its guards taking the Context
            for func, target in conditions:
                if func(ctx) != target:
                    break
            else:
                model.fsm_state = dest  # type: ignore[attr-defined]  # every statecore row has a destination
                model.state = step.dest  # type: ignore[attr-defined]  # the typed state the rest of statecore reads
                return step
        return None

    def _fire_event(self, model: object, event: Event, ctx: Context) -> Step | None:
        row = self._events[event].fire(model, ctx)
        if row is None:
            return None
        step = self._steps[id(row)]
        model.state = step.dest  # type: ignore[attr-defined]
        return step

    def refusal(self, state: State, event: Event) -> str:
        """Why ``event`` did nothing in ``state``: not allowed there, or no guard of its rows held."""
        allowed = self.allowed[state]
        if event not in allowed:
            return f"allowed: {', '.join(e.value for e in allowed) or 'none'}"
        return self._refusals[(state, event)]


def accepting(book: Rulebook, event: Event) -> frozenset[State]:
    """The states from which the table lets ``event`` move a service."""
    return frozenset(rule.source for rule in book.rules if rule.event == event)


def _transition(rule: Rule, predicates: dict[Guard, Predicate]) -> dict[str, object]:
    spec: dict[str, object] = {"trigger": rule.event.value, "source": rule.source.value, "dest": rule.dest.value}
    if rule.guard is not None:
        spec["conditions"] = [predicates[rule.guard]]  # called with the Context, by position or as ``ctx``
    return spec


def _step(book: Rulebook, rule: Rule) -> Step:
    return Step(
        rule=rule,
        dest=rule.dest,
        event_type=rule.event_type(book.binary),
        priority=rule.priority,
        actions=(*rule.effects, *book.state(rule.dest).on_enter),
        guard_label=book.guard(rule.guard).label if rule.guard is not None else None,
    )
