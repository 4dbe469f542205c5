"""The engine: services as small records, driven by one shared rulebook per binary.

Data flows one way: an event (from the embedding service, a timer job, an
attempt, or the report and capabilities jobs) goes through the rulebook's
``transitions`` machine; the row that fired changes the service's counters,
becomes a ``TransitionRecord``, and is committed to the store together with
its notification. Only then do its effects run (timers armed, an attempt
launched) and the notification go out. A failed commit restores the service
as it was. Drivers and sinks are never called under the engine lock.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from loguru import logger
from transitions import MachineError

from statecore.attempts import ThreadAttempts, VirtualAttempts
from statecore.backoff import backoff_delay, retry_rng
from statecore.clock import Clock, RealClock, VirtualClock
from statecore.deadlines import Deadlines
from statecore.drivers import Classifier, DriverSpec, default_classifier, load_driver
from statecore.errors import InitTimeout, InvalidTransition, StatecoreError, UnknownService
from statecore.guards import PREDICATES, Context
from statecore.machine import LifecycleMachine, Step
from statecore.notify import DeliveryThread, LoguruSink, Notifier, Sink
from statecore.probes import Prober, backend_state
from statecore.records import ErrorInfo, ServiceRow, TransitionRecord, iso, uuid4_text
from statecore.service import Service
from statecore.settings import Settings, load_settings
from statecore.store import MemoryStore, Store, StoreUnavailable, service_id
from statecore.table import BINARIES, Action, AdminAction, Binary, Event, State, admin_action, rulebook
from statecore.timers import Timers
from statecore.workers import DaemonWorkers

LIVE_STATES = (State.UP, State.FAILED_RECOVERABLE)
RETRYABLE_STATES = (State.FAILED_RECOVERABLE, State.DOWN)
STORE_RETRY = timedelta(seconds=1)
REAL_TIME_EXPIRY_RESOLUTION = timedelta(milliseconds=50)
STATS_WORKERS = 8
"""Threads for the stats polls of volumes entering ``up`` in real time (APScheduler's pool had 10)."""
"""Real-time expiries that lie this close together share one run of the expiry job (see deadlines.py)."""
_REASONS = {
    Event.START: "driver loaded; first attempt",
    Event.INIT_SUCCEEDED: "driver initialized",
    Event.HEARTBEAT: "heartbeat recorded again",
    Event.DRIVER_LOST: "is_working() returned false",
    Event.RESET: "reset by admin",
    Event.RESTART: "engine restarted: the driver is set up again in this process",
}

Effects = list[Callable[[], object]]


class Interrupted(InitTimeout):
    """The engine stopped while an attempt was in flight; counted as a failed, recoverable attempt."""


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
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.clock: Clock = clock if clock is not None else RealClock()
        self.timers = Timers(self.clock)
        self.virtual = self.timers.virtual
        self.store: Store = store if store is not None else MemoryStore()
        self.owner = owner or socket.gethostname()
        self.notifier = Notifier(sinks if sinks is not None else [LoguruSink()], acknowledge=self.store.acknowledge)
        self.classifier = classifier
        self._lock = threading.RLock()
        self._services: dict[str, Service] = {}
        self._groups: dict[str, dict[str, Service]] = {}
        self._hosts: dict[str, tuple[Service, ...]] = {}
        self._machines = {binary: LifecycleMachine(rulebook(binary), PREDICATES[binary]) for binary in BINARIES}
        self._ids = random.Random(seed) if self.virtual else None
        self._delivery = None if self.virtual else DeliveryThread(self.notifier)
        self._attempts = (
            VirtualAttempts(self._on_outcome, self.timers) if self.virtual else ThreadAttempts(self._on_outcome)
        )
        resolution = timedelta(0) if self.virtual else REAL_TIME_EXPIRY_RESOLUTION
        self._prober = Prober(threaded=not self.virtual)
        self._expiries = Deadlines(self.timers, "watchdog", self._on_expiries, resolution)
        self._started_at: datetime | None = None
        self._adopted: set[str] = set()
        self._store_down = False
        self._stats_due: dict[str, None] = {}
        """Volumes waiting for the ``stats`` job, in the order they came up (a dict: replays keep it)."""
        self._stats_workers = None if self.virtual else DaemonWorkers("statecore-stats", STATS_WORKERS)

    @classmethod
    def virtual_time(cls, start: datetime | None = None, **options: Any) -> Engine:
        """An engine on a VirtualClock: time moves only through ``advance``."""
        clock = VirtualClock(start) if start is not None else VirtualClock()
        return cls(clock=clock, **options)

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
        if binary not in BINARIES:
            raise StatecoreError(f"service {host!r}: binary {binary!r} is not one of {', '.join(BINARIES)}")
        if not host or (binary == "volume") != ("@" in host):
            form = "'host@backend'" if binary == "volume" else "a plain host name (no '@')"
            raise StatecoreError(f"service {host!r}: a {binary} service is named {form}")
        settings = self.settings.with_overrides(options)
        with self._lock:
            sid = service_id(binary, host)
            if sid in self._services:
                raise StatecoreError(f"service {host!r} ({binary}) is already registered")
            service = Service(host, binary, zone, settings, driver, driver_options, self.clock.now())
            stored = self.store.load(sid)
            if stored is None:
                self.store.save(service.stored(self.owner))
            else:
                service.adopt(stored)
                self._adopted.add(sid)
            self._services[sid] = service
            self._hosts[host] = (*self._hosts.get(host, ()), service)
            self._join_groups(service)
        if self._started_at is not None:
            self._bring_up(service)
        return sid

    def start(self) -> None:
        """Start the scheduler, re-send what the sinks never got, and start or recover every service."""
        with self._lock:
            if self._started_at is not None:
                return
            self._started_at = self.clock.now()
            self.timers.start()
            self.notifier.preload(self.store.pending)
            if self._delivery is not None:
                self._delivery.start()
            for group in list(self._groups):
                self._arm_group(group)
            services = list(self._services.values())
        for service in services:
            self._bring_up(service)
        self._publish_done()

    def shutdown(self) -> None:
        """Stop timers and deliver what the sinks will still take; hung attempt threads are abandoned."""
        self.timers.shutdown()
        if self._stats_workers is not None:
            self._stats_workers.stop()
        if self._delivery is not None:
            self._delivery.stop()
        else:
            self.notifier.deliver()

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- virtual time ---------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> int:
        """Virtual time only: run every job due in the next ``seconds``; returns how many ran."""
        return self.timers.advance(seconds)

    def advance_to(self, moment: datetime) -> int:
        return self.timers.advance_to(moment)

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
        service = self._find(host, binary)
        name = _EVENTS.get(event) if isinstance(event, str) else None
        if name is None:
            name = _event(service, event)
        if name is _START and error is None and service.state is _STARTING:
            error = self._load_driver(service)  # the start guard asks whether the driver loads
        elif name is _RESET and service.driver is None:
            self._load_driver(service)  # the cause may be fixed now; if not, the attempt fails with it
        with self._lock:
            record = self._dispatch(service, name, strict=True, reason=reason, error=error)
        self._publish_done()
        assert record is not None
        return record

    def reset(self, host: str, *, binary: Binary | None = None, reason: str = "reset by admin") -> TransitionRecord:
        return self.fire(host, Event.RESET, binary=binary, reason=reason)

    def disable(self, host: str, reason: str, *, binary: Binary | None = None) -> ServiceRow:
        return self._set_status(self._find(host, binary), True, reason)

    def enable(self, host: str, *, binary: Binary | None = None) -> ServiceRow:
        return self._set_status(self._find(host, binary), False, None)

    def service_list(
        self, *, admin: bool = True, binary: Binary | None = None, host: str | None = None
    ) -> list[ServiceRow]:
        """This engine's services (BEHAVIOR.md section 8); non-admins see neither backend_state nor errors."""
        with self._lock:
            services = [
                s for s in self._services.values()
                if (binary is None or s.binary == binary) and (host is None or s.host == host)
            ]  # fmt: skip
            return [self._row(s, admin=admin) for s in services]

    def fleet(self) -> list[ServiceRow]:
        """Every service of every host sharing the store, ``state`` from heartbeat age (store time)."""
        return self.store.fleet(self.settings.service_down_time)

    def service(self, host: str, *, binary: Binary | None = None) -> ServiceRow:
        service = self._find(host, binary)
        with self._lock:
            return self._row(service, admin=True)

    def history(self, host: str | None = None, *, binary: Binary | None = None) -> list[TransitionRecord]:
        return self.store.history(None if host is None else self._find(host, binary).id)

    def backend_state(self, host: str) -> str:
        """Ask the volume driver directly, bypassing the cached value (the seed's manage command)."""
        service = self._find(host, "volume")
        if service.driver is None or not service.initialized:
            return "down"
        return backend_state(service.host, service.driver)

    def jobs(self) -> list[tuple[str, datetime]]:
        """Every armed APScheduler job as (id, next run time); for tests, the simulator and operators."""
        return self.timers.jobs()

    def deadline(self, host: str, *, binary: Binary | None = None) -> datetime | None:
        """When ``heartbeat_expired`` is due for this service, if it is armed."""
        return self._expiries.get(self._find(host, binary).id)

    # -- dispatch -------------------------------------------------------------------------

    def _dispatch(
        self,
        service: Service,
        event: Event,
        *,
        strict: bool,
        error: BaseException | None = None,
        reason: str | None = None,
    ) -> TransitionRecord | None:
        """Apply one event under the lock; strict callers get errors, timers a silent drop.

        The engine's hot path: what it still costs, and why, is measured in docs/performance.md.
        """
        machine = self._machines[service.binary]
        source, fatal = service.state, False
        if error is not None:  # an event not allowed here is refused before the classifier sees its error
            if event not in machine.book.allowed_events(source):
                self._not_allowed(service, event, strict)
                return None
            fatal = self.classifier(error)
        now = self.clock.now()
        ctx = Context(service.settings, service.attempt, service.last_ok, now, service.initialized, error, fatal)
        before = service.snapshot()
        try:
            step = machine.fire(service, event, ctx)
        except MachineError:  # no row starts from this state: checked by the machine, not twice
            self._not_allowed(service, event, strict)
            return None
        if step is None:
            if strict:
                book = machine.book
                guards = ", ".join(book.guard(r.guard).label for r in book.rules_for(source, event) if r.guard)
                raise InvalidTransition(
                    service.host, service.binary, source.value, event.value, f"no guard holds: {guards}"
                )
            return None
        reason = reason or self._reason(service, step, error)
        info = None
        if error is not None:
            info = service.last_error = ErrorInfo.of(error)
        effects: Effects = []
        actions = self._actions
        for action in step.actions:
            actions[action](self, service, now, effects)
        record = TransitionRecord(
            service.host, service.binary, service.zone, event, source, step.dest, now, reason, info,
            service.attempt, service.retries_left(), service.next_retry_at, step.event_type, step.priority,
        )  # fmt: skip
        envelope = record.envelope(self._message_id())
        try:
            self.store.commit(service.stored(self.owner, record.retries_left), record, envelope, self.notifier.names)
        except StoreUnavailable:
            service.restore(before)
            raise
        for effect in effects:
            effect()
        self.notifier.publish(envelope)
        return record

    def _not_allowed(self, service: Service, event: Event, strict: bool) -> None:
        if strict:
            allowed = ", ".join(e.value for e in self._machines[service.binary].book.allowed_events(service.state))
            raise InvalidTransition(
                service.host, service.binary, service.state.value, event.value, f"allowed: {allowed or 'none'}"
            ) from None
        return None

    def _reason(self, service: Service, step: Step, error: BaseException | None) -> str:
        """A sentence for operators, computed before the row's actions change the counters."""
        event = step.rule.event
        if error is not None:
            return f"{step.guard_label or 'attempt failed'}: {ErrorInfo.of(error)}"
        if event is _RETRY:
            wait = f"{service.last_delay:g} s" if service.last_delay is not None else "its wait"
            kind = "backoff retry" if service.binary == "volume" else "periodic re-init"
            return f"{kind} {service.attempt} after {wait}"
        if event is _EXPIRED:
            return f"no heartbeat since {iso(service.last_ok)} ({service.settings.service_down_time:g} s)"
        return _REASONS.get(event) or step.guard_label or event.value

    def _message_id(self) -> str:
        """A uuid4 as text; seeded in virtual time, so a replay sends byte-identical notifications."""
        return uuid4_text(int.from_bytes(os.urandom(16)) if self._ids is None else self._ids.getrandbits(128))

    def _publish_done(self) -> None:
        """After the lock is released: hand notifications to the sinks (never under the lock)."""
        if self._delivery is not None:
            self._delivery.poke()
            return
        wait = self.notifier.deliver()
        if wait is not None:
            self.timers.at("notify|retry", self.clock.now() + timedelta(seconds=wait), self._publish_done)

    def _set_status(self, service: Service, disabled: bool, reason: str | None, *, publish: bool = True) -> ServiceRow:
        """Disable or enable, audited like a transition: a history row and a notification, one commit."""
        action = admin_action(AdminAction.DISABLE if disabled else AdminAction.ENABLE)
        with self._lock:
            previous = service.disabled, service.disabled_reason
            service.disabled, service.disabled_reason = disabled, reason
            record = TransitionRecord(
                service.host, service.binary, service.zone, action.name, service.state, service.state,
                self.clock.now(), reason or action.meaning, None, service.attempt, service.retries_left(),
                service.next_retry_at, action.event_type(service.binary), action.priority,
            )  # fmt: skip
            envelope = record.envelope(self._message_id())
            try:
                self.store.commit(service.stored(self.owner), record, envelope, self.notifier.names, status=True)
            except StoreUnavailable:
                service.disabled, service.disabled_reason = previous
                raise
            self.notifier.publish(envelope)
            row = self._row(service, admin=True)
        if publish:
            self._publish_done()
        return row

    # -- actions named in the table: they change counters now and return effects for later -----

    def _begin_attempt(self, service: Service, now: datetime, effects: Effects) -> None:
        self._cancel_retry(service, effects)
        service.attempt += 1
        service.total_attempts += 1
        service.attempt_token += 1
        token = service.attempt_token
        limit = timedelta(seconds=service.settings.init_timeout_for(service.binary))
        effects.append(
            partial(self.timers.at, f"timeout|{service.id}", now + limit, self._on_timeout, service.id, token)
        )
        effects.append(partial(self._launch, service, token))

    def _arm_retry(self, service: Service, now: datetime, effects: Effects) -> None:
        settings = service.settings
        if service.binary == "backup":
            delay = settings.periodic_interval
        else:
            rng = retry_rng(settings.reinit_backoff_seed, service.id, service.attempt)
            delay = backoff_delay(
                service.attempt, settings.reinit_backoff_max, settings.reinit_backoff_jitter, rng, service.last_delay
            )
        service.last_delay = delay
        service.next_retry_at = now + timedelta(seconds=delay)
        service.retry_token += 1
        effects.append(partial(self._arm_retry_job, service, service.next_retry_at))

    def _mark_live(self, service: Service, now: datetime, effects: Effects) -> None:
        self._cancel_retry(service, effects)
        service.initialized = True
        service.last_ok = service.updated_at = now
        service.last_error = None
        effects.append(partial(self._arm_expiry, service))
        if service.binary == "volume":
            effects.append(partial(self._poll_stats_soon, service.id, now))

    def _disarm(self, service: Service, now: datetime, effects: Effects) -> None:
        self._cancel_retry(service, effects)
        effects.append(partial(self._expiries.disarm, service.id))
        effects.append(partial(self.timers.cancel, f"timeout|{service.id}"))

    def _fresh_budget(self, service: Service, now: datetime, effects: Effects) -> None:
        service.attempt = 0
        service.last_delay = None

    def _count_failed_attempt(self, service: Service, now: datetime, effects: Effects) -> None:
        service.attempt = 1
        service.last_delay = None

    def _restart_grace(self, service: Service, now: datetime, effects: Effects) -> None:
        service.last_ok = now
        effects.append(partial(self._arm_expiry, service))

    def _forget_driver(self, service: Service, now: datetime, effects: Effects) -> None:
        service.initialized = False
        service.backend_state = None

    _actions: dict[Action, Callable[[Engine, Service, datetime, Effects], None]] = {
        Action.BEGIN_ATTEMPT: _begin_attempt,
        Action.ARM_RETRY: _arm_retry,
        Action.MARK_LIVE: _mark_live,
        Action.DISARM: _disarm,
        Action.FRESH_BUDGET: _fresh_budget,
        Action.COUNT_FAILED_ATTEMPT: _count_failed_attempt,
        Action.RESTART_GRACE: _restart_grace,
        Action.FORGET_DRIVER: _forget_driver,
    }

    def _cancel_retry(self, service: Service, effects: Effects) -> None:
        if service.next_retry_at is not None:
            service.retry_token += 1
            service.next_retry_at = None
            effects.append(partial(self.timers.cancel, f"retry|{service.id}"))

    def _arm_retry_job(self, service: Service, when: datetime) -> None:
        self.timers.at(f"retry|{service.id}", when, self._on_retry, service.id, service.retry_token)

    def _arm_expiry(self, service: Service) -> None:
        self._expiries.arm(service.id, service.last_ok + timedelta(seconds=service.settings.service_down_time))

    def _launch(self, service: Service, token: int) -> None:
        if service.driver is None:  # it could not be loaded after a restart: the attempt fails at once
            self._attempts.launch(service.id, token, _Unloadable(service.load_error))
        else:
            self._attempts.launch(service.id, token, service.driver)

    # -- starting and recovering -----------------------------------------------------------------

    def _load_driver(self, service: Service) -> StatecoreError | None:
        try:
            service.driver = load_driver(
                service.driver_spec, service.driver_options, service.settings.enable_unsupported_driver
            )
        except StatecoreError as failure:
            service.load_error = failure
            return failure
        service.load_error = None
        return None

    def _bring_up(self, service: Service) -> None:
        """A new service starts; a stored one carries on from its state with timers derived from it.
        A store outage does not strand it in ``starting``: it is tried again a second later."""
        try:
            if service.state is State.STARTING:
                error = self._load_driver(service)
                with self._lock:
                    self._dispatch(service, Event.START, strict=True, error=error)
            elif service.id in self._adopted:
                self._recover(service)
                self._adopted.discard(service.id)
        except StoreUnavailable as failure:
            logger.error("{}: not started, the store refused ({}); retrying in 1 s", service.host, failure)
            self.timers.at(f"redo|{service.id}|start", self.clock.now() + STORE_RETRY, self._bring_up, service)
        self._publish_done()

    def _recover(self, service: Service) -> None:
        """Derive the timers of a stored service; an overdue retry or expiry fires at once."""
        if service.state is not State.FAILED_PERMANENT:
            self._load_driver(service)
        with self._lock:
            state, now = service.state, self.clock.now()
            if state in (*LIVE_STATES, State.INITIALIZING):
                self._arm_expiry(service)  # the dead engine's deadline died with it
            if service.next_retry_at is not None and state in RETRYABLE_STATES:
                service.retry_token += 1
                self._arm_retry_job(service, max(now, service.next_retry_at))
            if state is State.INITIALIZING:
                interrupted = Interrupted(f"interrupted: the engine stopped during attempt {service.attempt}")
                self._dispatch(service, Event.INIT_FAILED, strict=True, error=interrupted)
            elif service.initialized and state in (State.UP, State.DOWN):
                self._dispatch(service, Event.RESTART, strict=True)

    # -- what the jobs and attempts call --------------------------------------------------------

    def _timer_event(
        self, sid: str, event: Event, check: Callable[[Service], bool], error: BaseException | None = None
    ) -> None:
        """A timer's event, if still meant; a store outage retries it a second later instead of losing it."""
        service = self._services.get(sid)
        if service is None:
            return
        with self._lock:
            if check(service):
                try:
                    self._dispatch(service, event, strict=False, error=error)
                except StoreUnavailable as failure:
                    logger.error("{}: {} not recorded ({}); retrying in 1 s", service.host, event.value, failure)
                    when = self.clock.now() + STORE_RETRY
                    self.timers.at(f"redo|{sid}|{event.value}", when, self._timer_event, sid, event, check, error)
        self._publish_done()

    def _on_outcome(self, sid: str, token: int, error: BaseException | None) -> None:
        def current(service: Service) -> bool:
            if service.attempt_token != token or service.state is not State.INITIALIZING:
                logger.debug("late outcome of an abandoned attempt of {} ignored", sid)
                return False
            self.timers.cancel(f"timeout|{sid}")
            return True

        event = Event.INIT_SUCCEEDED if error is None else Event.INIT_FAILED
        self._timer_event(sid, event, current, error)

    def _on_timeout(self, sid: str, token: int) -> None:
        service = self._services[sid]
        limit = service.settings.init_timeout_for(service.binary)
        error = InitTimeout(f"attempt {service.attempt} did not finish within {limit:g} s")
        self._timer_event(
            sid, Event.INIT_FAILED, lambda s: s.attempt_token == token and s.state is State.INITIALIZING, error
        )

    def _on_retry(self, sid: str, token: int) -> None:
        self._timer_event(sid, Event.RETRY, lambda s: s.retry_token == token and s.state in RETRYABLE_STATES)

    def _on_expiries(self) -> None:
        """The one expiry job: services whose deadline came and went without a heartbeat go down."""
        with self._lock:
            now = self.clock.now()
            for sid in self._expiries.pop_due(now):
                service = self._services[sid]
                if service.state not in LIVE_STATES:
                    continue  # initializing: the attempt's outcome decides; down or failed: nothing to expire
                if now < service.last_ok + timedelta(seconds=service.settings.service_down_time):
                    self._arm_expiry(service)  # heartbeats moved the deadline since it was armed
                    continue
                try:
                    self._dispatch(service, Event.HEARTBEAT_EXPIRED, strict=False)
                except StoreUnavailable as failure:
                    logger.error("{}: heartbeat_expired not recorded ({}); retrying in 1 s", service.host, failure)
                    self._expiries.arm(sid, now + STORE_RETRY)
        self._publish_done()

    def _poll_stats_soon(self, sid: str, now: datetime) -> None:
        """A volume's stats are polled at the instant it enters ``up``. Every volume that comes up
        before the ``stats`` job runs joins its batch, so a fleet coming up arms one job (and one
        re-entering ``up`` while the job is pending costs a dict write, not a job). An effect of the
        transition, so it runs under the lock: checking the batch and arming its job are one step."""
        if not self._stats_due:
            self.timers.at("stats", now, self._on_stats_due)
        self._stats_due[sid] = None

    def _on_stats_due(self) -> None:
        """Real time: each poll goes to the stats workers, so a ``get_volume_stats`` that hangs holds
        one worker rather than the batch, and this job returns at once. Virtual time: inline, in order."""
        with self._lock:
            due, self._stats_due = self._stats_due, {}
        for sid in due:
            if self._stats_workers is None:
                self._on_stats(sid)
            else:
                self._stats_workers.submit(self._on_stats, sid)

    def _on_stats(self, sid: str) -> None:
        """Poll a volume's stats; a changed backend_state is written through, so every host's
        service list (``statecore service-list``, ``statecore serve``) shows it, not just ours."""
        service = self._services[sid]
        if service.state is not State.UP or service.driver is None:
            return
        value = backend_state(service.host, service.driver)  # a driver call: never under the lock
        with self._lock:
            if service.state is not State.UP or value == service.backend_state:
                return  # it left up while its stats were asked for: nothing to publish
            service.backend_state = value
        try:
            self.store.set_backend_state(sid, value)
        except Exception as error:  # the next change, or the next transition's commit, writes it
            logger.warning("{}: backend_state {} not stored ({})", service.host, value, error)

    # -- report and capabilities jobs: one job per period, not one per service ------------------

    def _join_groups(self, service: Service) -> None:
        settings = service.settings
        caps = settings.backend_stats_polling_interval if service.binary == "volume" else settings.periodic_interval
        for group in (f"report|{settings.report_interval:g}", f"caps|{service.binary}|{caps:g}"):
            members = self._groups.setdefault(group, {})
            members[service.id] = service
            if len(members) == 1 and self._started_at is not None:
                self._arm_group(group)

    def _arm_group(self, group: str) -> None:
        seconds = float(group.rsplit("|", 1)[1])
        first = self.clock.now() + timedelta(seconds=seconds)
        handler = self._on_report if group.startswith("report|") else self._on_capabilities
        self.timers.every(group, seconds, first, handler, group)

    def _on_report(self, group: str) -> None:
        """Heartbeat every initialized service whose driver works, in one batch to the store."""
        with self._lock:
            members = [s for s in self._groups[group].values() if s.initialized and s.state in (State.UP, State.DOWN)]
        working = self._prober.working(members, _probe_limit(group))
        now = self.clock.now()
        try:
            recorded = self.store.record_heartbeats([s.id for s in working], now)
        except Exception as error:
            if not self._store_down:
                logger.error("store disconnected: heartbeats not recorded ({})", error)
                self._store_down = True
            return
        if self._store_down:
            logger.info("store reconnected: heartbeats recorded again")
            self._store_down = False
        with self._lock:
            for sid in recorded:
                service = self._services[sid]
                if service.state is State.UP:
                    service.last_ok = service.updated_at = now
                elif service.state is State.DOWN:
                    service.updated_at = now
                    try:
                        self._dispatch(service, Event.HEARTBEAT, strict=False)
                    except StoreUnavailable as failure:
                        logger.error("{}: heartbeat not recorded ({}); the next report retries", service.host, failure)
        self._publish_done()
        self._adopt_statuses(group)

    def _adopt_statuses(self, group: str) -> None:
        """An admin may disable or enable a service in the store from another host (``statecore
        disable``); the owning engine takes the change over and audits it, within a report interval."""
        members = self._groups[group]
        with self._lock:  # read and compare at once: a local disable committed in between must not be undone
            try:
                statuses = self.store.statuses(list(members))
            except Exception:
                return  # the store outage is already logged by the heartbeat above
            self._take_over(members, statuses)
        self._publish_done()

    def _take_over(self, members: dict[str, Service], statuses: dict[str, tuple[bool, str | None]]) -> None:
        for sid, (disabled, reason) in statuses.items():
            service = members[sid]
            if (service.disabled, service.disabled_reason) != (disabled, reason):
                try:
                    self._set_status(service, disabled, reason, publish=False)
                except StoreUnavailable:
                    return

    def _on_capabilities(self, group: str) -> None:
        """While up: a driver that stopped working is lost; a volume driver's stats are refreshed."""
        with self._lock:
            members = [s for s in self._groups[group].values() if s.state is State.UP]
        working = {s.id for s in self._prober.working(members, _probe_limit(group))}
        for service in members:
            if service.id not in working:
                self._timer_event(service.id, Event.DRIVER_LOST, lambda s: s.state is State.UP)
            elif service.binary == "volume":
                self._on_stats(service.id)

    # -- lookups and rows ---------------------------------------------------------------------

    def _find(self, host: str, binary: Binary | None) -> Service:
        """The service of ``host`` (and ``binary``); a plain dict read, atomic, so no lock is needed."""
        matches = self._hosts.get(host, ())
        if binary is not None:
            matches = tuple(s for s in matches if s.binary == binary)
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UnknownService(f"no {binary or 'volume or backup'} service {host!r} is registered")
        raise UnknownService(f"host {host!r} has both a volume and a backup service: say which binary")

    def _row(self, service: Service, *, admin: bool) -> ServiceRow:
        return service.stored(self.owner).row(alive=service.state is State.UP, admin=admin)


_START, _RESET, _RETRY, _EXPIRED = Event.START, Event.RESET, Event.RETRY, Event.HEARTBEAT_EXPIRED
_STARTING = State.STARTING
"""Read once: on Python 3.11 reading an Enum member off its class costs more than the comparison."""

_EVENTS: dict[str, Event] = {e.value: e for e in Event}
"""Event by name (an Event is its own name): a dict hit is faster than ``Event(name)`` on every fire."""


def _probe_limit(group: str) -> float:
    """How long a report or capabilities round waits for drivers: half its period, at most 5 s."""
    return min(float(group.rsplit("|", 1)[1]) / 2, 5.0)


def _event(service: Service, event: Event | str) -> Event:
    try:
        return Event(event)
    except ValueError:
        names = ", ".join(e.value for e in Event)
        raise InvalidTransition(
            service.host, service.binary, service.state.value, str(event), f"unknown event; events are: {names}"
        ) from None


class _Unloadable:
    """Stands in for a driver that could not be loaded after a restart: every attempt re-raises why."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error or StatecoreError("driver was never loaded")

    def do_setup(self) -> None:
        raise self.error

    def check_for_setup_error(self) -> None:
        raise self.error
