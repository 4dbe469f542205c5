"""A ``transitions`` Machine frozen once built, whose events dispatch from a compiled table.

``Event.trigger`` pays on every event for what a machine may have: it builds an
``EventData``, walks the prepare, before, after, exit, enter and finalize callback
lists, and logs eight debug lines. statecore's machines have none of those
callbacks, only conditions, and never change after they are built, so all of that
is avoidable cost in the engine's hot path (docs/performance.md measures it).

``FrozenMachine`` is built like any definition-only ``Machine`` (``model=None``),
then compiles each event into, per source state, its rows in order: the
conditions (callable, expected result) and the destination. It refuses what would
make that table lie: callbacks of any kind, conditions named by string (resolved
per model), a queue; and once frozen it refuses new states, rows, models and
callbacks. Its ``trigger`` returns what ``Event.trigger`` returns, raises what it
raises, and leaves the model in the same state; tests/test_frozen.py runs the two
side by side on every row, guard outcome and invalid event.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any, cast

from transitions import Event, EventData, Machine, State, Transition

Condition = tuple[Callable[..., Any], bool]
Row = tuple[Transition, tuple[Condition, ...], Any]
"""A compiled row: the transitions row itself, its conditions, and the state value to set (None: internal)."""

CALLBACK_LISTS = ("prepare_event", "before_state_change", "after_state_change", "finalize_event", "on_exception",
                  "on_final")  # fmt: skip


class FrozenMachineError(TypeError):
    """A FrozenMachine was asked for something its compiled table cannot honour."""


class FrozenState(State):
    def add_callback(self, trigger: str, func: Any) -> None:
        raise FrozenMachineError(f"state {self.name!r} is frozen: cannot add {trigger} callbacks")


class FrozenTransition(Transition):
    def add_callback(self, trigger: str, func: Any) -> None:
        raise FrozenMachineError(f"row {self.source} -> {self.dest} is frozen: cannot add {trigger} callbacks")


class FrozenEvent(Event):
    machine: FrozenMachine
    _routes: dict[str, tuple[Row, ...]] | None = None
    """Per source state name, its compiled rows; None until the machine freezes (stock dispatch until then)."""

    def add_transition(self, transition: Transition) -> None:
        if self._routes is not None:
            raise FrozenMachineError(f"event {self.name!r} is frozen: cannot add a row from {transition.source}")
        super().add_transition(transition)

    def freeze(self) -> None:
        """Compile the rows; they become tuples in a plain dict, so none can be added or removed later.
        A condition's function and target are read now: a later change to a row's objects is not seen."""
        machine = self.machine
        self._routes = {
            source: tuple(_compile(machine, self.name, row) for row in rows)
            for source, rows in self.transitions.items()
        }
        self.transitions = {source: tuple(rows) for source, rows in self.transitions.items()}  # type: ignore[assignment]

    def trigger(self, model: Any, *args: Any, **kwargs: Any) -> bool:
        """``Event.trigger`` without the EventData, callback walks and logging that a frozen machine cannot need."""
        rows = self._rows_for(model)
        if rows is None:
            # not frozen yet, not a state of this machine, or a str where the state is a StrEnum member
            # (or the other way round), which compare equal but stock tells apart: stock dispatch
            return bool(super().trigger(model, *args, **kwargs))
        return self._route(rows, model, args, kwargs) is not None

    def fire(self, model: Any, *args: Any, **kwargs: Any) -> Transition | None:
        """Like ``trigger``, but returns the row that fired (None: no condition held), so a caller
        need not find out again which one it was. Only on a frozen machine, for a model in one of
        its states with the state's own type."""
        machine = self.machine
        routes = self._routes
        value = getattr(model, machine.model_attribute)
        known = machine.state_names.get(value) if routes is not None else None
        if known is None or type(value) is not known[1]:
            raise FrozenMachineError(f"fire() needs a frozen machine and a model in one of its states, not {value!r}")
        rows = routes.get(known[0])  # type: ignore[union-attr]
        if rows is None:
            self._is_valid_source(machine.states[known[0]])  # raises MachineError, or logs and ignores, as stock
            return None
        if machine.send_event:
            return self._route(rows, model, args, kwargs)
        for transition, conditions, dest in rows:  # _route's loop, inline: the engine's hot path, a call fewer
            for func, target in conditions:
                if func(*args, **kwargs) != target:
                    break
            else:
                if dest is not None:
                    setattr(model, machine.model_attribute, dest)
                return transition
        return None

    def _rows_for(self, model: Any) -> tuple[Row, ...] | None:
        """The compiled rows from the model's state; raises MachineError (as stock) if there are none."""
        machine = self.machine
        routes = self._routes
        if routes is None:
            return None
        value = getattr(model, machine.model_attribute)
        known = machine.state_names.get(value)
        if known is None or type(value) is not known[1]:
            return None
        rows = routes.get(known[0])
        if rows is None:
            self._is_valid_source(machine.states[known[0]])  # raises MachineError, or logs and ignores, as stock
            return ()
        return rows

    def _route(
        self, rows: tuple[Row, ...], model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Transition | None:
        machine = self.machine
        if machine.send_event:
            state = machine.states[getattr(model, machine.model_attribute)]
            return self._fire(rows, model, EventData(state, self, machine, model, args, kwargs))
        for transition, conditions, dest in rows:
            for func, target in conditions:
                if func(*args, **kwargs) != target:
                    break
            else:
                if dest is not None:
                    setattr(model, machine.model_attribute, dest)
                return transition
        return None

    def _fire(self, rows: tuple[Row, ...], model: Any, data: EventData) -> Transition | None:
        """With ``send_event`` each condition gets the EventData, its ``transition`` set as stock sets it."""
        for transition, conditions, dest in rows:
            data.transition = transition
            if all(func(data) == target for func, target in conditions):
                if dest is not None:
                    setattr(model, self.machine.model_attribute, dest)
                return transition
        return None


class FrozenMachine(Machine):
    """A definition-only ``Machine`` (``model=None``): build it, then fire ``machine.events[name].trigger(obj)``."""

    state_cls = FrozenState
    transition_cls = FrozenTransition
    event_cls = FrozenEvent

    def __init__(self, *, model: None = None, **options: Any) -> None:
        if model is not None:
            raise FrozenMachineError("a FrozenMachine is definition-only: pass model=None and fire events on objects")
        super().__init__(model=None, **options)
        self._check_freezable()
        self.state_names: dict[Any, tuple[str, type]] = {
            state.value: (name, type(state.value)) for name, state in self.states.items()
        }
        """Model attribute value -> (state name, the value's type): string states are their own names,
        an Enum member maps to its name; the type tells a StrEnum member from the equal string."""
        for state in self.states.values():
            state.on_enter, state.on_exit = tuple(state.on_enter), tuple(state.on_exit)  # type: ignore[assignment]
        for event in self.events.values():
            cast(FrozenEvent, event).freeze()  # event_cls makes every event a FrozenEvent
        for attribute in CALLBACK_LISTS:  # empty, as checked: tuples, so nothing can be appended later
            setattr(self, attribute, ())
        self.states = MappingProxyType(self.states)  # type: ignore[assignment]  # read-only from now on
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise FrozenMachineError(f"the machine is frozen: cannot set {name!r}")
        super().__setattr__(name, value)

    def add_model(self, model: Any, initial: Any = None) -> None:
        if model:
            raise FrozenMachineError("a FrozenMachine is definition-only: fire machine.events[name].trigger(obj)")

    def add_states(self, states: Any, *args: Any, **kwargs: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise FrozenMachineError(f"the machine is frozen: cannot add states {states!r}")
        super().add_states(states, *args, **kwargs)

    def add_transition(self, trigger: str, source: Any, dest: Any = None, *args: Any, **kwargs: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise FrozenMachineError(f"the machine is frozen: cannot add {trigger!r} from {source!r} to {dest!r}")
        super().add_transition(trigger, source, dest, *args, **kwargs)

    def remove_transition(self, trigger: str, source: Any = "*", dest: Any = "*") -> None:
        raise FrozenMachineError(f"the machine is frozen: cannot remove {trigger!r} from {source!r} to {dest!r}")

    def _check_freezable(self) -> None:
        if self.has_queue:
            raise FrozenMachineError("a queued machine cannot be frozen: its triggers return before they run")
        for attribute in CALLBACK_LISTS:
            if getattr(self, attribute):
                raise FrozenMachineError(f"a frozen machine takes no callbacks: {attribute} is set")
        for state in self.states.values():
            if state.on_enter or state.on_exit:
                raise FrozenMachineError(f"a frozen machine takes no callbacks: state {state.name!r} has some")


def _compile(machine: Machine, event: str, row: Transition) -> Row:
    if row.prepare or row.before or row.after:
        raise FrozenMachineError(f"a frozen machine takes no callbacks: {event!r} from {row.source!r} has some")
    for condition in row.conditions:
        if not callable(condition.func):
            raise FrozenMachineError(
                f"{event!r} from {row.source!r}: condition {condition.func!r} must be a callable, not a name"
            )
    if row.dest and row.dest not in machine.states:
        raise FrozenMachineError(f"{event!r} from {row.source!r}: destination {row.dest!r} is not a state")
    conditions = tuple(row.conditions)
    row.prepare, row.before, row.after, row.conditions = (), (), (), conditions  # type: ignore[assignment]
    dest = machine.states[row.dest].value if row.dest else None  # a falsy dest is internal, as stock has it
    return row, tuple((cast(Callable[..., Any], condition.func), condition.target) for condition in conditions), dest
