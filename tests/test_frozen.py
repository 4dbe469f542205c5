"""FrozenMachine dispatches as stock ``transitions`` does, and refuses what would make it differ."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import EventData, Machine, MachineError

from statecore.frozen import FrozenMachine, FrozenMachineError
from statecore.guards import Context
from statecore.machine import LifecycleMachine, _transition
from statecore.table import BINARIES, Event, State, rulebook

STATES = ["a", "b", "c", "d"]
EVENTS = ["go", "stop", "poke"]
FLAGS = ["f0", "f1", "f2"]


class Model:
    def __init__(self, state: str) -> None:
        self.state = state


def flag(name: str) -> Any:
    """A condition reading one flag of the event's keyword arguments (send_event off)."""
    return lambda **kwargs: kwargs[name]


def flag_of_event(name: str) -> Any:
    """The same, from the EventData (send_event on)."""
    return lambda event_data: event_data.kwargs[name]


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {"trigger": st.sampled_from(EVENTS), "source": st.sampled_from(STATES), "dest": st.sampled_from(STATES)},
        optional={"conditions": st.lists(st.sampled_from(FLAGS), max_size=2),
                  "unless": st.lists(st.sampled_from(FLAGS), max_size=1),
                  "internal": st.booleans()},
    ),
    max_size=14,
)  # fmt: skip
steps_strategy = st.lists(
    st.tuples(st.sampled_from(EVENTS), st.fixed_dictionaries({name: st.booleans() for name in FLAGS}), st.booleans()),
    max_size=25,
)


def machine_pair(rows: list[dict[str, Any]], send_event: bool, ignore: bool) -> tuple[Machine, FrozenMachine]:
    make = flag_of_event if send_event else flag
    specs = []
    for row in rows:
        spec: dict[str, Any] = {"trigger": row["trigger"], "source": row["source"], "dest": row["dest"]}
        if row.get("internal"):
            spec["dest"] = None
        if row.get("conditions"):
            spec["conditions"] = [make(name) for name in row["conditions"]]
        if row.get("unless"):
            spec["unless"] = [make(name) for name in row["unless"]]
        specs.append(spec)
    options = {"states": STATES, "initial": "a", "transitions": specs, "auto_transitions": False,
               "send_event": send_event, "ignore_invalid_triggers": ignore}  # fmt: skip
    return Machine(model=None, **options), FrozenMachine(**options)


def outcome(machine: Machine, event: str, model: Model, flags: dict[str, bool]) -> tuple[str, Any]:
    try:
        return "returned", machine.events[event].trigger(model, **flags)
    except (MachineError, ValueError, KeyError) as error:
        return "raised", (type(error), str(error))


@settings(max_examples=300, deadline=None)
@given(rows=rows_strategy, steps=steps_strategy, send_event=st.booleans(), ignore=st.booleans())
def test_frozen_trigger_matches_stock_trigger(rows, steps, send_event, ignore):
    stock, frozen = machine_pair(rows, send_event, ignore)
    stock_model, frozen_model = Model("a"), Model("a")
    for event, flags, corrupt in steps:
        if event not in stock.events:
            continue
        if corrupt:  # a state the machine does not know: both must refuse it alike
            stock_model.state = frozen_model.state = "nowhere"
        assert outcome(frozen, event, frozen_model, flags) == outcome(stock, event, stock_model, flags)
        assert frozen_model.state == stock_model.state
        if corrupt:
            stock_model.state = frozen_model.state = "a"


@pytest.mark.parametrize("binary", BINARIES)
def test_lifecycle_machine_fires_the_rows_stock_transitions_would(binary):
    """Every (state, event, guard outcome) of the real rulebooks, against a stock machine built alike."""
    book = rulebook(binary)
    outcomes: dict[str, bool] = {}
    predicates = {guard: (lambda ctx, g=guard: outcomes[g]) for guard in {r.guard for r in book.rules} if guard}
    lifecycle = LifecycleMachine(book, predicates)
    stock = Machine(
        model=None, states=[s.value for s in State], initial=State.STARTING.value, auto_transitions=False,
        transitions=[_transition(rule, predicates) for rule in book.rules], model_attribute="fsm_state",
    )  # fmt: skip
    guards = sorted(predicates)
    allowed = {(rule.source, rule.event) for rule in book.rules}
    for state in State:
        for event in Event:
            for mask in range(2 ** len(guards)):
                outcomes.update({guard: bool(mask >> i & 1) for i, guard in enumerate(guards)})
                ours, theirs = Model(state), Model(state)
                ours.fsm_state = theirs.fsm_state = state.value
                ctx = Context(None, 0, None, None, False, None, False)  # type: ignore[arg-type]
                if (state, event) not in allowed:
                    with pytest.raises(MachineError):
                        stock.events[event.value].trigger(theirs, ctx=ctx)
                    with pytest.raises(MachineError):
                        lifecycle.machine.events[event.value].trigger(ours, ctx=ctx)
                    continue
                fired = stock.events[event.value].trigger(theirs, ctx=ctx)
                step = lifecycle.fire(ours, event, ctx)
                assert (step is not None) == fired
                assert ours.fsm_state == theirs.fsm_state
                if step is not None:
                    assert step.dest.value == theirs.fsm_state


def test_send_event_conditions_see_the_row_being_tried():
    seen: list[tuple[str, str]] = []

    def record(event_data: EventData) -> bool:
        seen.append((event_data.transition.source, event_data.transition.dest))
        return event_data.kwargs["ok"]

    machine = FrozenMachine(
        states=["a", "b", "c"], initial="a", auto_transitions=False, send_event=True,
        transitions=[{"trigger": "go", "source": "a", "dest": "b", "conditions": record},
                     {"trigger": "go", "source": "a", "dest": "c"}],
    )  # fmt: skip
    model = Model("a")
    assert machine.events["go"].trigger(model, ok=False)
    assert model.state == "c"
    assert seen == [("a", "b")]


def test_enum_states_are_set_as_stock_sets_them():
    from enum import Enum

    class Light(Enum):
        RED = 1
        GREEN = 2

    options = {"states": Light, "initial": Light.RED, "auto_transitions": False,
               "transitions": [{"trigger": "go", "source": Light.RED, "dest": Light.GREEN}]}  # fmt: skip
    stock, frozen = Machine(model=None, **options), FrozenMachine(**options)
    ours, theirs = Model(Light.RED), Model(Light.RED)  # type: ignore[arg-type]
    assert frozen.events["go"].trigger(ours) == stock.events["go"].trigger(theirs)
    assert ours.state is theirs.state is Light.GREEN


ROW = {"trigger": "go", "source": "a", "dest": "b"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"transitions": [{**ROW, "after": lambda: None}]}, "'go' from 'a' has some"),
        ({"transitions": [{**ROW, "before": lambda: None}]}, "'go' from 'a' has some"),
        ({"transitions": [{**ROW, "prepare": lambda: None}]}, "'go' from 'a' has some"),
        ({"transitions": [{**ROW, "conditions": "is_ready"}]}, "must be a callable, not a name"),
        ({"after_state_change": lambda: None}, "after_state_change is set"),
        ({"finalize_event": lambda: None}, "finalize_event is set"),
        ({"on_exception": lambda: None}, "on_exception is set"),
        ({"queued": True}, "queued machine"),
        ({"model": object()}, "definition-only"),
    ],
)
def test_what_a_frozen_machine_cannot_honour_is_refused_by_name(options, message):
    base = {"states": [{"name": "a"}, {"name": "b"}], "initial": "a", "transitions": [ROW], "auto_transitions": False}
    with pytest.raises(FrozenMachineError, match=message):
        FrozenMachine(**{**base, **options})


def test_state_callbacks_are_refused():
    states = [{"name": "a"}, {"name": "b", "on_enter": lambda: None}]
    with pytest.raises(FrozenMachineError, match="state 'b' has some"):
        FrozenMachine(states=states, initial="a", transitions=[ROW], auto_transitions=False)


def test_a_frozen_machine_cannot_change_after_it_is_built():
    machine = FrozenMachine(states=["a", "b"], initial="a", transitions=[ROW], auto_transitions=False)
    with pytest.raises(FrozenMachineError, match="cannot add 'stop'"):
        machine.add_transition("stop", "b", "a")
    with pytest.raises(FrozenMachineError, match="cannot add states"):
        machine.add_states(["c"])
    with pytest.raises(FrozenMachineError, match="cannot set 'send_event'"):
        machine.send_event = True
    with pytest.raises(FrozenMachineError, match="cannot add enter callbacks"):
        machine.on_enter_b(lambda: None)
    with pytest.raises(FrozenMachineError, match="cannot add after callbacks"):
        machine.events["go"].add_callback("after", lambda: None)
    with pytest.raises(FrozenMachineError, match="definition-only"):
        machine.add_model(Model("a"))
    model = Model("a")
    assert machine.events["go"].trigger(model) and model.state == "b"


def test_rows_and_callback_lists_cannot_be_changed_behind_the_compiled_table():
    machine = FrozenMachine(states=["a", "b"], initial="a", transitions=[ROW], auto_transitions=False)
    with pytest.raises(FrozenMachineError, match="cannot remove 'go'"):
        machine.remove_transition("go", source="a")
    with pytest.raises(AttributeError):
        machine.before_state_change.append(lambda: None)  # a tuple now
    with pytest.raises(AttributeError):
        machine.events["go"].transitions["a"].append(None)
    with pytest.raises(TypeError):
        machine.states["c"] = machine.states["a"]


def test_a_str_enum_state_and_its_equal_string_are_told_apart_as_stock_does():
    from enum import StrEnum

    class S(StrEnum):
        A = "B"  # names and values crossed on purpose
        B = "A"

    options = {"states": S, "initial": S.A, "auto_transitions": False,
               "transitions": [{"trigger": "go", "source": S.A, "dest": S.B}]}  # fmt: skip
    stock, frozen = Machine(model=None, **options), FrozenMachine(**options)
    for value in (S.A, "B", "A"):
        ours, theirs = Model(value), Model(value)  # type: ignore[arg-type]
        assert outcome(frozen, "go", ours, {}) == outcome(stock, "go", theirs, {})
        assert ours.state == theirs.state and type(ours.state) is type(theirs.state)


def test_an_empty_destination_is_internal_and_an_unknown_one_is_refused_by_name():
    options = {"states": ["a", ""], "initial": "a", "auto_transitions": False,
               "transitions": [{"trigger": "go", "source": "a", "dest": ""}]}  # fmt: skip
    stock, frozen = Machine(model=None, **options), FrozenMachine(**options)
    ours, theirs = Model("a"), Model("a")
    assert frozen.events["go"].trigger(ours) == stock.events["go"].trigger(theirs)
    assert ours.state == theirs.state == "a"
    with pytest.raises(FrozenMachineError, match="destination 'zz' is not a state"):
        FrozenMachine(states=["a"], initial="a", auto_transitions=False,
                      transitions=[{"trigger": "go", "source": "a", "dest": "zz"}])  # fmt: skip
