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
otherwise), and the row that fired is told by its own condition rather than by
an ``after`` callback: a guarded row fires exactly when its condition holds,
and an unguarded row is the only one left of its (source, event) when it does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transitions import Machine

from statecore.frozen import FrozenMachine
from statecore.guards import Context, Predicate
from statecore.table import Action, Event, Guard, Priority, Rule, Rulebook, State

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
        """``machine_class``: a plain ``transitions.Machine`` also works (the benchmarks compare the two)."""
        self.book = book
        self.steps = {id(rule): _step(book, rule) for rule in book.rules}
        """Keyed by the row's identity: rows are module constants, and hashing a pydantic row costs µs."""
        self.machine = machine_class(
            model=None,
            states=[state.value for state in State],
            initial=State.STARTING.value,
            transitions=[self._transition(rule, predicates) for rule in book.rules],
            auto_transitions=False,
            model_attribute=MODEL_ATTRIBUTE,
        )
        self._triggers = {event: self.machine.events[event.value].trigger for event in Event}
        self._unguarded = {(r.source, r.event): self.steps[id(r)] for r in book.rules if r.guard is None}

    def fire(self, model: object, event: Event, ctx: Context) -> Step | None:
        """Run the event on ``model`` (with ``state`` and ``fsm_state``); returns the row that fired, if any."""
        ctx.fired = None
        source = model.state  # type: ignore[attr-defined]
        if not self._triggers[event](model, ctx=ctx):
            return None
        step = self._unguarded[(source, event)] if ctx.fired is None else self.steps[id(ctx.fired)]
        model.state = step.dest  # type: ignore[attr-defined]  # the typed state the rest of statecore reads
        return step

    def _transition(self, rule: Rule, predicates: dict[Guard, Predicate]) -> dict[str, object]:
        spec: dict[str, object] = {"trigger": rule.event.value, "source": rule.source.value, "dest": rule.dest.value}
        if rule.guard is not None:
            spec["conditions"] = [_condition(predicates[rule.guard], rule)]
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


def _condition(predicate: Predicate, rule: Rule) -> Callable[..., bool]:
    def holds(*, ctx: Context) -> bool:
        if predicate(ctx):
            ctx.fired = rule
            return True
        return False

    return holds
