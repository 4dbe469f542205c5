"""The ``transitions`` machine, built from a rulebook and nothing else.

One definition-only machine per binary (``model=None``) serves every service
of that binary: firing ``machine.events[name].trigger(service)`` costs the same
as a single-model machine and adds no memory per service, unlike ``add_model``
or ``LockedMachine`` (see docs/decisions.md). The engine holds its own lock.
"""

from __future__ import annotations

from collections.abc import Callable

from transitions import EventData, Machine

from statecore.guards import Context, Predicate
from statecore.table import Event, Guard, Rule, Rulebook, State

MODEL_ATTRIBUTE = "fsm_state"
"""Where transitions keeps its plain-string state: string states dispatch faster than Enum ones."""


class LifecycleMachine:
    def __init__(self, book: Rulebook, predicates: dict[Guard, Predicate]) -> None:
        self.book = book
        self.machine = Machine(
            model=None,
            states=[state.value for state in State],
            initial=State.STARTING.value,
            transitions=[_transition(rule, predicates) for rule in book.rules],
            auto_transitions=False,
            send_event=True,
            model_attribute=MODEL_ATTRIBUTE,
        )
        self._events = {event: self.machine.events[event.value] for event in Event}

    def fire(self, model: object, event: Event, ctx: Context) -> Rule | None:
        """Run the event on ``model`` (with ``state`` and ``fsm_state``); returns the row that fired, if any."""
        ctx.fired = None
        self._events[event].trigger(model, ctx=ctx)
        if ctx.fired is not None:
            model.state = ctx.fired.dest  # the typed state the rest of statecore reads
        return ctx.fired


def _transition(rule: Rule, predicates: dict[Guard, Predicate]) -> dict[str, object]:
    spec: dict[str, object] = {
        "trigger": rule.event.value,
        "source": rule.source.value,
        "dest": rule.dest.value,
        "after": [_remember(rule)],
    }
    if rule.guard is not None:
        spec["conditions"] = [_condition(predicates[rule.guard])]
    return spec


def _condition(predicate: Predicate) -> Callable[[EventData], bool]:
    return lambda event_data: predicate(event_data.kwargs["ctx"])


def _remember(rule: Rule) -> Callable[[EventData], None]:
    def after(event_data: EventData) -> None:
        event_data.kwargs["ctx"].fired = rule

    return after
