"""The engine: the public front of statecore, wiring its stages together.

One event flows one way: ``Engine.fire`` (or a job, jobs.py) names an event for a
service of the registry (registry.py); ``dispatch.step`` runs the rulebook's machine
and the row's actions (actions.py) into a ``TransitionRecord`` and effects, as data;
``Ledger.commit`` (ledger.py) stores the record with its notification, or puts the
service back as it was; ``Jobs.run`` arms or cancels timers, sets deadlines, queues
attempts (runtime.py: real or virtual time); and ``Jobs.settle``, once the lock is
released, starts the queued attempts and hands notifications to the sinks. Steps run
under the engine lock, store I/O (a database's commit) without it, drivers and sinks
never under it. Which services this engine may drive is leases.py's business.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from statecore.clock import Clock, VirtualClock
from statecore.dispatch import EVENTS, Moved, event_named, step
from statecore.drivers import Classifier, DriverSpec, default_classifier
from statecore.guards import PREDICATES
from statecore.jobs import Jobs
from statecore.leases import Leases
from statecore.ledger import Ledger
from statecore.machine import LifecycleMachine
from statecore.notify import LoguruSink, Notifier, Sink
from statecore.probes import backend_state
from statecore.records import ServiceRow, TransitionRecord
from statecore.registry import Registry, check_name
from statecore.runtime import Runtime, runtime_for
from statecore.service import Service, ServiceSpec
from statecore.settings import Settings, load_settings
from statecore.store import MemoryStore, Store
from statecore.table import BINARIES, Binary, Event, State, rulebook


class Engine:
    """Supervises volume and backup services; real time by default, virtual with a VirtualClock."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        sinks: Iterable[Sink] | None = None,
        store: Store | None = None,
        classifier: Classifier = default_classifier,
        seed: int = 0,
        owner: str | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        """``runtime``: real or virtual time (runtime.py); by default the one ``clock`` implies."""
        self.settings = settings if settings is not None else load_settings()
        self.runtime = runtime if runtime is not None else runtime_for(clock, seed)
        self.clock, self.timers = self.runtime.clock, self.runtime.timers
        self.store: Store = store if store is not None else MemoryStore()
        self.owner = owner or socket.gethostname()
        self.notifier = Notifier(sinks if sinks is not None else [LoguruSink()], acknowledge=self.store.acknowledge)
        self.classifier = classifier
        self.registry = Registry()
        self._lock = threading.RLock()
        self._machines = {binary: LifecycleMachine(rulebook(binary), PREDICATES[binary]) for binary in BINARIES}
        delivery = self.runtime.delivery(self.notifier)
        ids, lock = self.runtime.message_id, self._lock
        self.ledger = Ledger(self.store, self.notifier, delivery, self.owner, ids, self._committed, lock)
        self._jobs = Jobs(self.registry, self.runtime, self.ledger, self._lock, self._apply)
        self.leases = Leases(self.store, self.registry, self._jobs, self.notifier, self.owner, self.settings,
                             self.runtime.message_id, self._register)  # fmt: skip
        self._jobs.on_fenced = self.leases.drop
        self._started_at: datetime | None = None
        self._produced: list[TransitionRecord] | None = None  # while ``advance`` runs: the records it produced

    @classmethod
    def virtual_time(cls, start: datetime | None = None, **options: Any) -> Engine:
        """An engine on a VirtualClock: time moves only through ``advance``."""
        return cls(clock=VirtualClock(start) if start is not None else VirtualClock(), **options)

    # -- registration and life ------------------------------------------------------------

    def add_service(
        self,
        host: str,
        binary: Binary,
        driver: DriverSpec,
        *,
        zone: str = "nova",
        options: Mapping[str, Any] | None = None,
        driver_options: Mapping[str, Any] | None = None,
    ) -> str:
        """Register a service (or adopt its stored state after a restart); after ``start()`` it
        starts at once. Returns its id."""
        return self.add_services([ServiceSpec(host, binary, driver, zone, options, driver_options)])[0]

    def add_services(self, specs: Iterable[ServiceSpec]) -> list[str]:
        """``add_service`` for many: one store read and one write for all of them (a fleet from a
        configuration file). A bad one is refused by name before any is registered."""
        self.ledger.refuse_in_batch("register services")
        now, new = self.clock.now(), []
        for spec in specs:
            check_name(spec.host, spec.binary)
            settings = self.settings.with_overrides(spec.options)
            new.append(Service(spec.host, spec.binary, spec.zone, settings, spec.driver, spec.driver_options, now))
        with self._lock:  # the ids are reserved here, so the claim can ask the store without the lock
            self.registry.check_new(new, waiting=self.leases.waiting)
        try:
            self._register(self.leases.take(new, refuse=not self.settings.standby))  # stored states adopted
        finally:
            self.registry.reserved.difference_update(service.id for service in new)
        return [service.id for service in new]

    def _register(self, services: list[Service]) -> None:
        self._jobs.register(services, running=self._started_at is not None)

    def start(self) -> None:
        """Start the scheduler, re-send what the sinks never got, and start or recover every service."""
        self.ledger.refuse_in_batch("start the engine")
        owned = frozenset(self.registry.services)  # not another host's (leases.py); read off the lock
        left = {} if self._started_at else {sink: self.store.pending(sink, owned) for sink in self.notifier.names}
        with self._lock:
            if self._started_at is not None:
                return
            self._started_at = self.clock.now()
            self.timers.start()
            self.notifier.preload(left)
            self.ledger.delivery.start()
            for group in list(self.registry.groups):
                self._jobs.arm_group(group)
            self.leases.arm()
            self._jobs.arm_periodic(self.settings.history_retention)
            services = list(self.registry.services.values())
        self._jobs.bring_up_all(services)

    def shutdown(self) -> None:
        """Stop timers and deliver what the sinks will still take; hung attempt threads are abandoned."""
        self.timers.shutdown()
        self._jobs.workers.stop()
        self._jobs.attempts.stop()
        self.ledger.delivery.stop()
        self.leases.release()  # after the last delivery: a standby taking over re-sends what is left

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- virtual time ---------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> list[TransitionRecord]:
        """Virtual time only: run every job due in the next ``seconds``; returns the transitions
        they made, in order (admin actions and events fired by hand are not among them)."""
        return self.advance_to(self.clock.now() + timedelta(seconds=seconds))

    def advance_to(self, moment: datetime) -> list[TransitionRecord]:
        self._produced = produced = list[TransitionRecord]()
        try:
            self.timers.advance_to(moment)
        finally:
            self._produced = None
        return produced

    # -- what the embedding service and admins call -----------------------------------------

    def fire(
        self,
        host: str,
        event: Event | str,
        *,
        binary: Binary | None = None,
        reason: str | None = None,
        error: BaseException | None = None,
    ) -> TransitionRecord:
        """Send an event; raises InvalidTransition or StoreUnavailable, and then changes nothing.

        ``error`` goes with ``init_failed`` (and decides its guard), for services that run
        attempts themselves; it is classified like an attempt's own error.
        """
        service = self.registry.find(host, binary)
        name = EVENTS.get(event) or event_named(service, event)  # a dict hit, or the clear refusal
        if name is _START and error is None and service.state is _STARTING:
            error = service.load_driver()  # the start guard asks whether the driver loads
        elif name is _RESET and service.driver is None:
            service.load_driver()  # the cause may be fixed now; if not, the attempt fails with it
        try:
            with self._lock:
                record = self._apply(service, name, True, error, reason)  # positional: the hot path
        finally:  # a fenced commit drops the service there
            self._jobs.settle()
        assert record is not None
        return record

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit for the embedding service: the events fired inside are committed in one
        transaction when the block ends, then announced and their effects run. Inside, ``fire``
        returns each record before it is committed; if the commit fails, the block raises
        ``StoreUnavailable`` and every service it moved is as it was before the block."""
        try:
            with self._lock, self.ledger.batch():
                yield
        finally:  # what the block committed before it raised still gets its attempts and notifications
            self._jobs.settle()

    def reset(self, host: str, *, binary: Binary | None = None, reason: str = "reset by admin") -> TransitionRecord:
        return self.fire(host, Event.RESET, binary=binary, reason=reason)

    def disable(self, host: str, reason: str, *, binary: Binary | None = None) -> ServiceRow:
        return self._set_status(self.registry.find(host, binary), True, reason)

    def enable(self, host: str, *, binary: Binary | None = None) -> ServiceRow:
        return self._set_status(self.registry.find(host, binary), False, None)

    def service_list(
        self, *, admin: bool = True, binary: Binary | None = None, host: str | None = None
    ) -> list[ServiceRow]:
        """This engine's services (BEHAVIOR.md section 8); non-admins see neither backend_state nor errors."""
        with self._lock:
            return [self._row(s, admin=admin) for s in self.registry.select(binary=binary, host=host)]

    def fleet(self) -> list[ServiceRow]:
        """Every host's services; ``state`` by heartbeat age and stored window, on the store's clock or ours."""
        return self.store.fleet(now=self.clock.now())

    def service(self, host: str, *, binary: Binary | None = None) -> ServiceRow:
        service = self.registry.find(host, binary)
        with self._lock:
            return self._row(service, admin=True)

    def history(self, host: str | None = None, *, binary: Binary | None = None) -> list[TransitionRecord]:
        return self.store.history(None if host is None else self.registry.find(host, binary).id)

    def backend_state(self, host: str) -> str:
        """Ask the volume driver directly, bypassing the cached value (the seed's manage command)."""
        service = self.registry.find(host, "volume")
        if service.driver is None or not service.initialized:
            return "down"
        return backend_state(service.host, service.driver)

    def jobs(self) -> list[tuple[str, datetime]]:
        """Every armed APScheduler job as (id, next run time); for tests, the simulator and operators."""
        return self.timers.jobs()

    def deadline(self, host: str, *, binary: Binary | None = None) -> datetime | None:
        """When ``heartbeat_expired`` is due for this service, if it is armed."""
        return self._jobs.expiries.get(self.registry.find(host, binary).id)

    # -- the stages, under the lock ----------------------------------------------------------

    def _apply(
        self,
        service: Service,
        event: Event,
        strict: bool,
        error: BaseException | None = None,
        reason: str | None = None,
    ) -> TransitionRecord | None:
        """Step, commit, run the effects; the caller holds the lock. A refusal raises for strict
        callers (admins, the embedding service) and is dropped for timers, whose moment has passed."""
        if service.pinned:  # its last step is still being written: the store's order is the steps'
            self.ledger.await_service(service)
        outcome = step(self._machines[service.binary], service, event, self.clock.now(), self.classifier, error, reason)
        if not isinstance(outcome, Moved):
            if strict:
                raise outcome.error()
            return None
        if self.ledger.commit(service, outcome):  # committed now; in a batch, the ledger calls _committed
            if outcome.effects:
                self._jobs.run(outcome.effects)
            if self._produced is not None:
                self._produced.append(outcome.record)
        return outcome.record

    def _committed(self, moved: Moved) -> None:
        """The ledger has the step: its effects may run now (and ``advance`` wants its record)."""
        if moved.effects:
            self._jobs.run(moved.effects)
        if self._produced is not None and type(moved.record.event) is Event:  # not an admin action
            self._produced.append(moved.record)

    def _set_status(self, service: Service, disabled: bool, reason: str | None) -> ServiceRow:
        with self._lock:
            self.ledger.set_status(service, disabled, reason, self.clock.now())
            row = self._row(service, admin=True)
        self._jobs.settle()
        return row

    def _row(self, service: Service, *, admin: bool) -> ServiceRow:
        return service.row(self.owner, admin=admin)


_START, _RESET, _STARTING = Event.START, Event.RESET, State.STARTING  # read once: Event.START costs more on 3.11
