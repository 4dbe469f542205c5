"""Dispatch: events per second through the whole engine, against bare ``transitions`` and a dict.

The engine case is the public ``Engine.fire`` on up volume services in virtual time, alternating
``heartbeat_expired`` (up -> down) and ``heartbeat`` (down -> up, guarded): every event runs the
guards, the table's actions, a transition record, a commit to the in-memory store and a delivery
to an in-memory sink. Virtual time stands still, so the stats job each ``up`` entry arms is
re-armed rather than run. A fresh engine per run keeps history growth out of the figure.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from transitions import Machine

import statecore.engine as engine_module
from bench.common import Section, Sizes, interleave, rate
from statecore import Engine, MemorySink, Settings
from statecore.deadlines import Deadlines
from statecore.machine import LifecycleMachine
from statecore.notify import Notifier
from statecore.records import TransitionRecord
from statecore.service import Service
from statecore.store import MemoryStore
from statecore.table import RULES, Event, State
from statecore.testing import ScriptedDriver
from statecore.timers import Timers

PAIR = (Event.HEARTBEAT_EXPIRED.value, Event.HEARTBEAT.value)


def up_volumes(count: int) -> tuple[Engine, list[str]]:
    """``count`` volume services, all up, with a memory store and a memory sink."""
    engine = Engine.virtual_time(settings=Settings(), sinks=[MemorySink()], store=MemoryStore())
    hosts = [f"node{index}@lvm" for index in range(count)]  # the names engine_rate fires at
    for name in hosts:
        engine.add_service(name, "volume", ScriptedDriver(["ok"]))
    engine.start()
    engine.advance(0)
    return engine, hosts


def engine_rate(hosts: list[str], events: int, engine: Engine | None = None) -> float:
    """Events per second of ``engine`` (by default a fresh one with ``hosts`` up); setting up is not timed."""
    target = engine if engine is not None else up_volumes(len(hosts))[0]
    order = [(name, event) for name in hosts for event in PAIR]
    laps, rest = divmod(events, len(order))
    plan = order * laps + order[:rest]
    fire = target.fire
    return rate(len(plan), lambda: [fire(name, event) for name, event in plan])


class _Model:
    __slots__ = ("fsm_state", "state")


def bare_machine() -> Machine:
    """The same states and rows as ``statecore.table.RULES``; each guard a condition that is always true."""
    rows: list[dict[str, Any]] = []
    for rule in RULES:
        row: dict[str, Any] = {"trigger": rule.event.value, "source": rule.source.value, "dest": rule.dest.value}
        if rule.guard is not None:
            row["conditions"] = [lambda _event: True]
        rows.append(row)
    return Machine(
        model=None, states=[s.value for s in State], initial=State.UP.value, transitions=rows,
        auto_transitions=False, send_event=True, model_attribute="fsm_state",
    )  # fmt: skip


def models(count: int) -> list[_Model]:
    made = []
    for _ in range(count):
        model = _Model()
        model.fsm_state = model.state = State.UP.value
        made.append(model)
    return made


def bare_rate(machine: Machine, objects: list[_Model], events: int) -> float:
    expired, heartbeat = (machine.events[name].trigger for name in PAIR)
    pairs = events // 2
    plan = (objects * (pairs // len(objects) + 1))[:pairs]

    def run() -> None:
        for obj in plan:
            expired(obj)
            heartbeat(obj)

    return rate(2 * pairs, run)


def dict_rate(objects: list[_Model], events: int) -> float:
    """The Python limit: ``obj.state = table[(obj.state, event)]`` (guards ignored)."""
    table: dict[tuple[str, str], str] = {}
    for rule in RULES:
        table.setdefault((rule.source.value, rule.event.value), rule.dest.value)
    pairs = events // 2
    plan = (objects * (pairs // len(objects) + 1))[:pairs]
    expired, heartbeat = PAIR

    def run() -> None:
        for obj in plan:
            obj.state = table[(obj.state, expired)]
            obj.state = table[(obj.state, heartbeat)]

    return rate(2 * pairs, run)


def run(sizes: Sizes) -> Section:
    section = Section("Dispatch")
    machine = bare_machine()
    for count in (1, 500 if sizes.quick else 10_000):
        _case(section, sizes, machine, count)
    section.notes.append(
        f"{sizes.dispatch_events:,} events a run, alternating `heartbeat_expired` and `heartbeat`. Target: the "
        "engine at no less than half the speed of bare transitions (ratio >= 0.5)."
    )
    section.notes += TAKEN_OUT
    section.notes += hot_path(sizes)
    return section


TAKEN_OUT = [
    "",
    "Taken out of the hot path (about 12,000 events/s before, on this machine, with this harness):",
    "",
    "- the `after` callback each row had: a row's own condition now says it fired, and an unguarded row is the "
    "only one left of its (state, event);",
    "- per-event table look-ups (a linear scan for the destination's `on_enter`, guard labels, notification "
    "types): each row is compiled once into a `Step`;",
    "- `strftime` for ISO timestamps (now `%` formatting) and the `UUID` object per message id (now its text);",
    "- APScheduler's `add_job`/`remove_job` bookkeeping for one-shot timers (signature checks, events nobody "
    "listens to, a raised and caught `ConflictingIdError` to replace) and its sorted-list job store, whose "
    "inserts and deletes moved every later job: jobs go straight into a heap-based store;",
    "- the per-event snapshot loop (one `attrgetter` now), the locked service lookup that built id strings "
    "(a host index), `Event(name)` (a dict).",
]


def _case(section: Section, sizes: Sizes, machine: Machine, count: int) -> None:
    """Each engine run gets a fresh engine (its history and sink grow with every event)."""
    events, objects = sizes.dispatch_events, models(count)
    hosts = [f"node{index}@lvm" for index in range(count)]
    engine_samples, bare_samples, dict_samples = interleave(
        sizes.runs,
        lambda: engine_rate(hosts, events),
        lambda: bare_rate(machine, objects, events),
        lambda: dict_rate(objects, events),
    )
    label = "1 service" if count == 1 else f"cycling over {count:,} services"
    engine_figure = section.add(f"engine.fire, {label}", engine_samples, "events/s")
    bare_figure = section.add(f"bare transitions Machine(model=None), {label}", bare_samples, "events/s")
    dict_figure = section.add(f"dict-lookup FSM, {label}", dict_samples, "events/s")
    section.compare(engine_figure, bare_figure)
    section.compare(dict_figure, bare_figure)


# -- where the time goes ------------------------------------------------------------------------------

COSTS: tuple[tuple[str, Any, str, str], ...] = (
    ("transitions, through LifecycleMachine.fire", LifecycleMachine, "fire",
     "the rulebook itself: EventData, conditions, callbacks and the state change (the bare baseline pays it too)"),
    ("TransitionRecord()", engine_module, "TransitionRecord",
     "the one fact that the caller, the history and the notification share (a frozen dataclass)"),
    ("TransitionRecord.envelope", TransitionRecord, "envelope", "the notification dict the sinks receive"),
    ("Engine._message_id", Engine, "_message_id", "a uuid4 per notification (seeded in virtual time, for replays)"),
    ("Service.stored", Service, "stored", "the ServiceState the store commits (the SQL store writes it)"),
    ("MemoryStore.commit", MemoryStore, "commit", "state, history row and one outbox entry per sink"),
    ("Notifier.deliver", Notifier, "deliver", "virtual time hands every notification to the sinks at once, then "
     "acknowledges the outbox"),
    ("Notifier.publish", Notifier, "publish", "queue the envelope per sink (locked: real time delivers from a thread)"),
    ("Engine._reason", Engine, "_reason", "the operator's sentence; `heartbeat_expired` formats last_ok as ISO 8601"),
    ("Timers.at", Timers, "at", "the one-shot `stats|` job each `up` entry arms (stats are polled at once, as Cinder)"),
    ("Deadlines.arm", Deadlines, "arm", "moving the expiry deadline on `up` entry (a heap push, no job update)"),
    ("Service.snapshot", Service, "snapshot", "the counters a failed commit restores"),
    ("Context()", engine_module, "Context", "what the guards may look at"),
)  # fmt: skip


def hot_path(sizes: Sizes) -> list[str]:
    """One line per cost of ``Engine.fire``, with its share of the time of the loop.

    Each cost is a call the engine makes; wrapping it in a timer shows how long it takes inside
    the real loop (its cache misses included). "The rest" is what no named call explains, plus
    the wrappers' own overhead; the headline µs per event is from the same loop without them.
    """
    events = sizes.dispatch_events
    unwrapped = statistics.median(engine_rate(["node0@lvm"], events) for _ in range(sizes.runs))
    spent = dict.fromkeys((label for label, *_ in COSTS), 0)
    originals = [(owner, attribute, getattr(owner, attribute)) for _, owner, attribute, _ in COSTS]
    for (label, owner, attribute, _), (_, _, original) in zip(COSTS, originals, strict=True):
        setattr(owner, attribute, _timed(original, label, spent))
    try:
        total = events / engine_rate(["node0@lvm"], events) * 1e9  # ns, wrappers included
    finally:
        for owner, attribute, original in originals:
            setattr(owner, attribute, original)
    lines = ["", f"Where the time of `Engine.fire` goes ({1e6 / unwrapped:.1f} µs an event, one service):", ""]
    for label, nanoseconds in sorted(spent.items(), key=lambda item: -item[1]):
        why = next(text for name, _, _, text in COSTS if name == label)
        lines.append(f"- {nanoseconds / total:5.1%} `{label}`: {why}")
    rest = 1 - sum(spent.values()) / total
    lines.append(f"- {rest:5.1%} the rest: `fire` and `_dispatch` themselves (lookup, lock, actions), and the timers")
    return lines


def _timed(original: Callable[..., Any], label: str, spent: dict[str, int]) -> Callable[..., Any]:
    clock = time.perf_counter_ns

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += clock() - start

    return timed
