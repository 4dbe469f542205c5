"""Dispatch: events per second through the whole engine, against bare ``transitions`` and a dict.

The engine case is the public ``Engine.fire`` on up volume services in virtual time, alternating
``heartbeat_expired`` (up -> down) and ``heartbeat`` (down -> up, guarded): every event runs the
guards, the table's actions, a transition record, a commit to the in-memory store and a delivery
to an in-memory sink. Virtual time stands still, so the stats job each ``up`` entry arms is
re-armed rather than run. A fresh engine per run keeps history growth out of the figure. The full
cycle adds ``driver_lost``, ``reset`` and ``init_succeeded``: the retry job with its backoff, an
attempt run (inline) with its timeout and outcome jobs, and the way back up.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from transitions import Event as StockEvent
from transitions import Machine, Transition

import statecore.dispatch as dispatch_module
from bench.common import Section, Sizes, interleave, rate
from statecore import Engine, MemorySink, Settings
from statecore.deadlines import Deadlines
from statecore.frozen import FrozenMachine
from statecore.guards import PREDICATES
from statecore.jobs import Jobs
from statecore.machine import LifecycleMachine
from statecore.notify import Notifier
from statecore.records import TransitionRecord
from statecore.runtime import MessageIds
from statecore.service import Service, ServiceSpec
from statecore.store import MemoryStore
from statecore.table import BINARIES, RULES, Event, State, rulebook
from statecore.testing import ScriptedDriver

PAIR = (Event.HEARTBEAT_EXPIRED.value, Event.HEARTBEAT.value)
"""The cheapest pair: no job armed but the stats batch and the expiry deadline."""
CYCLE = (Event.DRIVER_LOST.value, Event.RESET.value, Event.INIT_SUCCEEDED.value, *PAIR)
"""The full cycle: a lost driver arms a retry with its backoff, a reset starts an attempt (its
timeout job, the driver's calls, its outcome job), its success comes back up."""


def up_volumes(count: int, *, stock: bool = False) -> tuple[Engine, list[str]]:
    """``count`` volume services, all up, with a memory store and a memory sink.

    ``stock``: the engine's rulebook machines are plain ``transitions.Machine`` instead of
    ``FrozenMachine``, to show what the compiled dispatch saves inside the whole engine.
    """
    engine = Engine.virtual_time(settings=Settings(), sinks=[MemorySink()], store=MemoryStore())
    if stock:
        engine._machines = {
            b: LifecycleMachine(rulebook(b), PREDICATES[b], machine_class=StockMachine) for b in BINARIES
        }
    hosts = [f"node{index}@lvm" for index in range(count)]  # the names engine_rate fires at
    engine.add_services([ServiceSpec(name, "volume", ScriptedDriver(["ok"])) for name in hosts])  # one claim
    engine.start()
    engine.advance(0)
    return engine, hosts


def engine_rate(
    hosts: list[str],
    events: int,
    engine: Engine | None = None,
    *,
    stock: bool = False,
    cycle: tuple[str, ...] = PAIR,
    collector: bool = True,
) -> float:
    """Events per second of ``engine`` (by default a fresh one with ``hosts`` up); setting up is not timed.
    ``collector=False``: the collector is off while timing, to show its share (never a headline figure)."""
    target = engine if engine is not None else up_volumes(len(hosts), stock=stock)[0]
    order = [(name, event) for name in hosts for event in cycle]
    laps, rest = divmod(events, len(order))
    plan = order * laps + order[:rest]
    fire = target.fire

    def run() -> None:
        if not collector:
            gc.disable()
        try:
            for name, event in plan:
                fire(name, event)
        finally:
            gc.enable()

    return rate(len(plan), run)


class StockFiringEvent(StockEvent):
    """Stock dispatch (``Event.trigger``), then the row that fired: the engine asks for it. It is
    the row from the source whose conditions hold, asked once more, so the stock rows over-state
    stock dispatch by one guard evaluation an event."""

    def fire(self, model: Any, *args: Any, **kwargs: Any) -> Transition | None:
        source = getattr(model, self.machine.model_attribute)
        if not self.trigger(model, *args, **kwargs):
            return None
        rows = self.transitions[source]
        return next(row for row in rows if all(c.func(*args, **kwargs) == c.target for c in row.conditions))


class StockMachine(Machine):
    event_cls = StockFiringEvent


class _Model:
    __slots__ = ("fsm_state", "state")


def bare_machine(machine_class: type[Machine] = Machine) -> Machine:
    """The same states and rows as ``statecore.table.RULES`` and the engine's options; each guard a
    condition that is always true. ``FrozenMachine`` for the compiled dispatch on its own."""
    rows: list[dict[str, Any]] = []
    for rule in RULES:
        row: dict[str, Any] = {"trigger": rule.event.value, "source": rule.source.value, "dest": rule.dest.value}
        if rule.guard is not None:
            row["conditions"] = [lambda **_: True]
        rows.append(row)
    return machine_class(
        model=None, states=[s.value for s in State], initial=State.UP.value, transitions=rows,
        auto_transitions=False, model_attribute="fsm_state",
    )  # fmt: skip


def models(count: int) -> list[_Model]:
    made = []
    for _ in range(count):
        model = _Model()
        model.fsm_state = model.state = State.UP.value
        made.append(model)
    return made


def bare_rate(machine: Machine, objects: list[_Model], events: int, cycle: tuple[str, ...] = PAIR) -> float:
    triggers = [machine.events[name].trigger for name in cycle]
    laps = events // len(cycle)
    plan = (objects * (laps // len(objects) + 1))[:laps]

    def run() -> None:
        for obj in plan:
            for trigger in triggers:
                trigger(obj)

    return rate(len(cycle) * laps, run)


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
    for count in (1, 500 if sizes.quick else 10_000):
        _case(section, sizes, count)
    section.notes.append(
        f"{sizes.dispatch_events:,} events a run, alternating `heartbeat_expired` and `heartbeat` (the cheap pair), "
        "or going round the full cycle. Targets: the cheap pair at no less than the speed of bare transitions "
        "(ratio >= 1.0), and the full cycle (`driver_lost` -> `reset` -> `init_succeeded` -> `heartbeat_expired` "
        "-> `heartbeat`, which arms the retry, its backoff, an attempt, its timeout and outcome jobs) at 0.6 of it "
        "or better (ratio >= 0.6), each over 1 and over 10,000 services. The engine fires through "
        "`FrozenMachine` (statecore/frozen.py), a `transitions.Machine` whose events dispatch from a table compiled "
        "when it is built, since statecore's machines have conditions but no callbacks and never change; the "
        "`FrozenMachine` rows show that dispatch alone, and the `stock Event.trigger` rows the whole engine on a "
        "plain `Machine`, so what each part costs can be read off. Each run starts after a `gc.collect()`, so "
        "the garbage of setting up (a previous run's engine) is not charged to the run; the collector stays on. "
        "Cycling over 10,000 services costs more than one service through memory and the collector: each event "
        "reads and writes its own service's objects (its record, its stored state, its deadline, its jobs), "
        "which over 10,000 services are mostly out of the cache, where a bare machine touches one small object; "
        "and what outlives an event (the record the history and the memory sink share, a stored state, an armed "
        "job) is walked again by the collector's older generations."
    )
    section.notes += REMAINING
    section.notes += collector_share(sizes)
    section.notes += TAKEN_OUT
    section.notes += hot_path(sizes)
    return section


REMAINING = [
    "",
    "What the engine does that a bare machine does not (the figures below and the breakdown at the end say how much):",
    "",
    "- every event: a transition record kept in the store's history, its notification (a message id, queued, "
    "delivered and acknowledged; its envelope, with an ISO 8601 timestamp, is built only when a sink or a "
    "database reads it: the memory sink and the memory store keep the record), the stored state the commit "
    "writes, the snapshot a failed commit restores;",
    "- in the full cycle, the jobs: a retry armed and cancelled, a timeout and an outcome armed per attempt, "
    "each a job in the heap-based store, and the attempt itself (the scripted driver's calls, its virtual "
    "duration measured);",
    "- over 10,000 services, memory: those objects are each service's own, and the collector walks what "
    "outlives an event (the timeout and outcome jobs each `reset` leaves armed stay, since the cycle's "
    "`init_succeeded` is fired by hand while virtual time stands still). The lines below, timed with the "
    "collector off, show its share.",
]


def collector_share(sizes: Sizes) -> list[str]:
    """The collector's share of an event over the large fleet: the same runs with it off while timing."""
    count = 500 if sizes.quick else 10_000
    hosts = [f"node{index}@lvm" for index in range(count)]
    lines = ["", f"The collector's share over {count:,} services (µs an event, collector on / off):", ""]
    for label, cycle in (("cheap pair", PAIR), ("full cycle", CYCLE)):
        on, off = interleave(  # a note, not a headline figure: the runs of a heavy measurement
            sizes.heavy_runs,
            lambda cycle=cycle: engine_rate(hosts, sizes.dispatch_events, cycle=cycle),
            lambda cycle=cycle: engine_rate(hosts, sizes.dispatch_events, cycle=cycle, collector=False),
        )
        lines.append(f"- {label}: {1e6 / statistics.median(on):.1f} / {1e6 / statistics.median(off):.1f}")
    return lines


TAKEN_OUT = [
    "",
    "Taken out of the hot path, in four rounds (about 12,000 events/s at first; 19,400 events/s, 0.23 of bare "
    "transitions, after the first round, on this machine, with this harness; the bare machine then had "
    "`send_event=True`, like the engine's machine at the time, and both have it off now; before the third round "
    "the cheap pair ran at 0.643 of bare transitions over 1 service and 0.562 over 10,000, the full cycle at "
    "0.395 and 0.239; before the fourth, at 0.753 and 0.68, and 0.497 and 0.287):",
    "",
    "- the `after` callback each row had: the machine now returns the row that fired (`FrozenEvent.fire`);",
    "- per-event table look-ups (a linear scan for the destination's `on_enter`, guard labels, notification "
    "types): each row is compiled once into a `Step`;",
    "- `strftime` for ISO timestamps (now `%` formatting, and no `astimezone` for an instant already in UTC) and "
    "the `UUID` object per message id (now its text);",
    "- APScheduler's `add_job`/`remove_job` bookkeeping for one-shot timers (signature checks, events nobody "
    "listens to, a raised and caught `ConflictingIdError` to replace) and its sorted-list job store, whose "
    "inserts and deletes moved every later job: jobs go straight into a heap-based store;",
    "- the per-event snapshot loop (one `attrgetter` now), the locked service lookup that built id strings "
    "(a host index), `Event(name)` (a dict);",
    "- second round: stock `Event.trigger` (an `EventData`, six empty callback lists walked, eight debug log "
    "calls per event): `FrozenMachine` dispatches from rows compiled when it is built;",
    "- `TransitionRecord` as a frozen dataclass, which sets its fourteen fields through `object.__setattr__` "
    "(3.5 µs, against 0.7 µs for the named tuple it is now), and `ServiceState` built by keyword (positional "
    "now, with the record's `retries_left` instead of computing it twice);",
    "- a one-shot `stats|<service>` job armed on every `up` entry: volumes that come up before the `stats` job "
    "runs share it;",
    "- checking that the event is allowed in the state before firing, which the machine checks anyway (its "
    "`MachineError` becomes the `InvalidTransition`), and reading Enum members off their class on every event "
    "(module constants now: on Python 3.11 that read costs more than the comparison);",
    "- third round: a uuid4 formatted per notification: message ids are formatted 512 at a time from one draw, "
    "a slice assignment per hex digit in C (the same texts, seeded replays unchanged: tests/test_message_ids.py);",
    "- the Python-level `__new__` of `Context` (a named tuple now, it was a slotted dataclass), "
    "`TransitionRecord` and every effect of a row (`ArmJob`, `Launch`, ...): built with `tuple.__new__`;",
    "- a wrapper function and a keyword dict per guard: the guards take the `Context` by position;",
    "- `Enum.value` in every job id and two calls per job the store files; a generator-based context manager "
    "around each attempt (a plain function measures its virtual duration now); the attempt's timeout window "
    "built per attempt (once per settings now); `:g` formatting of `service_down_time` in every expiry's reason;",
    "- a lock per delivered envelope (only the drainer pops: deque pops and appends are thread-safe) and an "
    "empty dict per acknowledgement in the memory outbox;",
    "- objects for the collector: an attempt's outcome travels as a tuple (the collector stops tracking it) and "
    "the scripted driver builds its hang `Event` (half a dozen tracked objects per service) only when its "
    "script hangs;",
    "- fourth round: the notification envelope built for every event (two dicts and an ISO 8601 timestamp, a "
    "sixth of the event): a `Notification` (message id and record) builds it when first read, once for every "
    "sink that reads it; the memory store's outbox and `MemorySink` keep it as it is (same envelopes, same "
    "message ids, when read), other sinks and a database get the envelope;",
    "- firing through the event object (two calls and a look-up of the row that fired): `LifecycleMachine` reads "
    "`FrozenMachine`'s compiled rows, with each row's `Step`, in one dict hit per (event, state);",
    "- a heap push per expiry deadline moved: a deadline moved later keeps its key's standing entry, which "
    "queues the key again at its deadline when it surfaces (over 10,000 services the heap had grown by one "
    "entry per `up` entry, each push comparing cold entries); the watchdog moves a live fleet's deadlines in one call;",
    "- what outlives an event, for the collector: `MemorySink` keeps the history's own record and the message id "
    "(no envelope, no wrapper), the job store indexes the job itself (no tuple per armed job), one stateless "
    "trigger serves every one-shot job, the memory store keeps leases as plain tuples and the scripted driver "
    "its script as tuples;",
    "- `Timers.at`'s look-up then add or update (one call now), its wake-up of a virtual scheduler, an empty "
    "keyword dict per job; a call per effect (its runner takes the effect's fields), the lock per notification "
    "published to a single sink.",
]


def _case(section: Section, sizes: Sizes, count: int) -> None:
    """Each engine run gets a fresh engine (its history and sink grow with every event)."""
    events, objects = sizes.dispatch_events, models(count)
    hosts = [f"node{index}@lvm" for index in range(count)]
    bare, frozen = bare_machine(), bare_machine(FrozenMachine)
    engine_samples, stock_samples, bare_samples, frozen_samples, dict_samples = interleave(
        sizes.runs,
        lambda: engine_rate(hosts, events),
        lambda: engine_rate(hosts, events, stock=True),
        lambda: bare_rate(bare, objects, events),
        lambda: bare_rate(frozen, objects, events),
        lambda: dict_rate(objects, events),
    )
    label = "1 service" if count == 1 else f"cycling over {count:,} services"
    engine_figure = section.add(f"engine.fire, {label}", engine_samples, "events/s")
    stock_figure = section.add(f"engine.fire on stock Event.trigger, {label}", stock_samples, "events/s")
    bare_figure = section.add(f"bare transitions Machine(model=None), {label}", bare_samples, "events/s")
    frozen_figure = section.add(f"FrozenMachine alone, {label}", frozen_samples, "events/s")
    dict_figure = section.add(f"dict-lookup FSM, {label}", dict_samples, "events/s")
    for figure in (engine_figure, stock_figure, frozen_figure, dict_figure):
        section.compare(figure, bare_figure)
    full, bare_full = interleave(
        sizes.runs,
        lambda: engine_rate(hosts, events, cycle=CYCLE),
        lambda: bare_rate(bare, objects, events, cycle=CYCLE),
    )
    cycle = " -> ".join(CYCLE)
    full_figure = section.add(f"engine.fire, full cycle ({cycle}), {label}", full, "events/s")
    bare_full_figure = section.add(f"bare transitions Machine(model=None), full cycle, {label}", bare_full, "events/s")
    section.compare(full_figure, bare_full_figure)


# -- where the time goes ------------------------------------------------------------------------------

COSTS: tuple[tuple[str, Any, str, str], ...] = (
    ("LifecycleMachine.fire", LifecycleMachine, "fire",
     "the rulebook itself, from FrozenMachine's compiled rows: the row's conditions (the guards) and the state change"),
    ("TransitionRecord.envelope", TransitionRecord, "envelope",
     "the notification dict, built only when a sink or a database reads it (here nothing does)"),
    ("MessageIds()", MessageIds, "__call__",
     "a uuid4 per notification, popped from a batch of 512 formatted at once (seeded in virtual time, for replays)"),
    ("Service.stored", Service, "stored", "the ServiceState the store commits (the SQL store writes it)"),
    ("MemoryStore.commit", MemoryStore, "commit", "state, history row and one outbox entry per sink"),
    ("Notifier.deliver", Notifier, "deliver", "virtual time hands every notification to the sinks at once, then "
     "acknowledges the outbox"),
    ("Notifier.publish", Notifier, "publish", "queue the notification per sink (a single sink: one append, no lock)"),
    ("dispatch._reason", dispatch_module, "_reason",
     "the operator's sentence; `heartbeat_expired` formats last_ok as ISO 8601"),
    ("Jobs._poll_stats_soon", Jobs, "_poll_stats_soon",
     "each `up` entry queues its volume for the `stats` job (stats are polled at once, as Cinder)"),
    ("Deadlines.arm", Deadlines, "arm", "moving the expiry deadline on `up` entry (a heap push, no job update)"),
    ("Service.snapshot", Service, "snapshot", "the counters a failed commit restores"),
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
    lines = [
        "",
        f"Where the time of `Engine.fire` goes ({1e6 / unwrapped:.1f} µs an event, one service; a collection "
        "counts toward the call whose allocation started it):",
        "",
    ]
    for label, nanoseconds in sorted(spent.items(), key=lambda item: -item[1]):
        why = next(text for name, _, _, text in COSTS if name == label)
        lines.append(f"- {nanoseconds / total:5.1%} `{label}`: {why}")
    rest = 1 - sum(spent.values()) / total
    lines.append(f"- {rest:5.1%} the rest: `fire`, `_apply` and `step` themselves (lookup, lock, the `Context`, "
                 "actions, effects, the `TransitionRecord` tuple, the `Notification`) and the timing "
                 "wrappers' own cost")  # fmt: skip

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
