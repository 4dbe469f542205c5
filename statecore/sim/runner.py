"""Runs a scenario through the real engine in virtual time and keeps what happened.

Nothing here imitates the engine: services are registered with ``ScriptedDriver``s
on the engine's own clock, every timer is the engine's APScheduler job, and the
events of the file are applied at their exact virtual instants (after every job
due at that instant, in file order among themselves). What comes out is what an
operator would have seen: every notification envelope, a timeline, and the
final service list.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from statecore.clock import DEFAULT_VIRTUAL_START, Clock
from statecore.engine import Engine
from statecore.errors import InvalidTransition
from statecore.notify import MemorySink
from statecore.records import ServiceRow
from statecore.sim.faults import BlockingHeartbeats
from statecore.sim.scenario import DriverScript, EventSpec, Member, Scenario
from statecore.table import Binary
from statecore.testing import ScriptedDriver
from statecore.timers import JobKind, job_id_of

LineKind = Literal["notification", "scenario", "refused", "observed"]
Change = tuple[str | None, str | None] | None

FULL_COLLECTION_EVERY = 100
"""Collections of the middle generation per full collection during a run (the interpreter's default is 10)."""

_DONE = {
    "heartbeat_fail": "heartbeats are no longer recorded",
    "heartbeat_restore": "heartbeats are recorded again",
    "driver_lost": "is_working() now returns false",
    "enable": "enabled by admin",
}


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the timeline: a notification the engine sent, or something the scenario did."""

    at: float
    host: str
    kind: LineKind
    what: str
    detail: str
    event: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    priority: str | None = None


@dataclass(frozen=True, slots=True)
class SimResult:
    name: str
    start: datetime
    duration: float
    binaries: dict[str, Binary]
    envelopes: list[Mapping[str, Any]]
    lines: list[Line]
    rows: list[ServiceRow]


class Recorder(MemorySink):
    """The simulation's sink: keeps the envelopes as sent, and the timeline in the order things happened."""

    def __init__(self, start: datetime) -> None:
        super().__init__()
        self.start = start
        self.lines: list[Line] = []

    def seconds(self, moment: datetime) -> float:
        return (moment - self.start).total_seconds()

    def emit(self, envelope: Mapping[str, Any]) -> None:
        super().emit(envelope)
        payload = envelope["payload"]
        self.lines.append(
            Line(
                at=self.seconds(datetime.fromisoformat(envelope["timestamp"])),
                host=payload["host"],
                kind="notification",
                what=envelope["event_type"].split(".", 1)[1],
                detail=payload["reason"],
                event=payload["event"],
                from_state=payload["from_state"],
                to_state=payload["to_state"],
                priority=envelope["priority"],
            )
        )

    def note(self, moment: datetime, host: str, kind: LineKind, what: str, detail: str, change: Change = None) -> None:
        source, dest = change or (None, None)
        at = self.seconds(moment)
        self.lines.append(Line(at, host, kind, what, detail, from_state=source, to_state=dest))


class PolledDriver(ScriptedDriver):
    """A scripted driver that tells the simulation each time the engine polls its stats, and
    which ``backend_state`` the engine will make of the answer (a raising call or a malformed
    value is ``down``, a missing key ``up``: statecore.probes.backend_state)."""

    def __init__(self, script: DriverScript, clock: Clock, polled: Callable[[str], None]) -> None:
        super().__init__(
            script.attempts,
            clock=clock,
            init_seconds=script.init_seconds,
            backend_state=script.backend_state,
            supported=script.supported,
        )
        self.polled = polled

    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        try:
            stats = super().get_volume_stats(refresh)
        except Exception:
            self.polled("down")
            raise
        value = stats.get("backend_state", "up")
        self.polled(value if value in ("up", "down") else "down")
        return stats


class Simulation:
    """One scenario wired to one virtual-time engine.

    ``run`` does it all; tests that look at the engine between events call
    ``start`` and then ``run_until`` with growing instants.
    """

    def __init__(self, scenario: Scenario, name: str = "scenario") -> None:
        self.scenario, self.name = scenario, name
        self.start_at = scenario.start or DEFAULT_VIRTUAL_START
        self.store = BlockingHeartbeats()
        self.recorder = Recorder(self.start_at)
        self.engine = Engine.virtual_time(
            self.start_at,
            settings=scenario.engine_settings(),
            sinks=[self.recorder],
            store=self.store,
            seed=scenario.seed,
        )
        self.members = {member.host: member for member in scenario.members()}
        self.drivers: dict[str, ScriptedDriver] = {}
        self.sids = {member.host: self._register(member) for member in self.members.values()}
        self.backend: dict[str, str] = dict.fromkeys(self.members, "up")  # what the list showed last, per volume
        self.pending = deque(sorted(scenario.events, key=lambda e: e.at))  # stable: file order within an instant

    def _register(self, member: Member) -> str:
        host, spec = member.host, member.spec
        driver = PolledDriver(spec.driver, self.engine.clock, partial(self._after_poll, host))
        self.drivers[host] = driver
        return self.engine.add_service(host, spec.binary, driver, zone=spec.zone, options=spec.options or None)

    def start(self) -> None:
        self.engine.start()

    def run_until(self, seconds: float) -> None:
        """Advance to ``seconds`` after the start, applying every event due by then at its instant."""
        while self.pending and self.pending[0].at <= seconds:
            event = self.pending.popleft()
            self.engine.advance_to(self.moment(event.at))
            self._apply(event)
        self.engine.advance_to(self.moment(seconds))

    def run(self) -> SimResult:
        """The whole scenario. What was built before it starts (services, drivers, jobs) lives as
        long as the run, so it is moved out of the collector's way for the run (``gc.freeze``): a
        full collection would otherwise walk every service's objects again, more often the larger
        the fleet. What the run itself keeps (the history, the recorded lines and envelopes) only
        grows until it ends, so full collections, which would walk it again each time it grew by a
        quarter, are spaced out for the run (``FULL_COLLECTION_EVERY``: at 10,000 services, two in a
        2 h run rather than eleven), and the interpreter's thresholds are restored after it."""
        self.start()
        gc.collect()
        gc.freeze()
        try:
            with full_collections_spaced():
                self.run_until(self.scenario.duration)
        finally:
            gc.unfreeze()
        self.engine.shutdown()
        return self.result()

    def moment(self, seconds: float) -> datetime:
        return self.start_at + timedelta(seconds=seconds)

    def result(self) -> SimResult:
        return SimResult(
            name=self.name,
            start=self.start_at,
            duration=self.scenario.duration,
            binaries={host: member.spec.binary for host, member in self.members.items()},
            envelopes=list(self.recorder.envelopes),
            lines=list(self.recorder.lines),
            rows=self.engine.service_list(),
        )

    def _after_poll(self, host: str, reported: str) -> None:
        """The engine stores the polled value after the call returns: read it in a job at the same
        instant, which the virtual scheduler runs after the polling job. A poll that reports what the
        timeline already shows cannot change it, so it arms nothing (most polls, in a long run)."""
        if reported != self.backend[host]:
            self.engine.timers.at(job_id_of(JobKind.SAMPLE, self.sids[host]), self.engine.now(), self._sample, host)

    def _sample(self, host: str) -> None:
        value = self.engine.registry.find(host, "volume").backend_state  # the record, not a whole ServiceRow
        if value is not None and value != self.backend[host]:
            change = (self.backend[host], value)
            self.recorder.note(self.engine.now(), host, "observed", "backend_state", "stats poll", change)
            self.backend[host] = value

    def _apply(self, event: EventSpec) -> None:
        """Do what the event says; an admin action the table refuses becomes a timeline line, not a crash."""
        host, now = event.host, self.engine.now()
        binary = self.members[host].spec.binary
        if event.do == "heartbeat_fail":
            self.store.blocked.add(self.sids[host])
        elif event.do == "heartbeat_restore":
            self.store.blocked.discard(self.sids[host])
        elif event.do == "driver_lost":
            self.drivers[host].working = False
        elif event.do == "disable":
            reason = event.reason or "disabled by admin"
            self.engine.disable(host, reason, binary=binary)
            self.recorder.note(now, host, "scenario", "disable", reason)
            return
        elif event.do == "enable":
            self.engine.enable(host, binary=binary)
        else:
            try:
                self.engine.reset(host, binary=binary, reason=event.reason or "reset by admin")
            except InvalidTransition as refused:
                self.recorder.note(now, host, "refused", "reset refused", str(refused))
            return
        self.recorder.note(now, host, "scenario", event.do, _DONE[event.do])


def run_scenario(scenario: Scenario, name: str = "scenario") -> SimResult:
    """Building the fleet is spaced out too: its services only accumulate until the run."""
    with full_collections_spaced():
        return Simulation(scenario, name).run()


@contextmanager
def full_collections_spaced() -> Iterator[None]:
    """At most one full collection per ``FULL_COLLECTION_EVERY`` of the middle generation, for as
    long as objects only accumulate; the interpreter's thresholds are restored after."""
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], max(thresholds[2], FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
