"""Everything that happens because time passed: the effects of a committed step, and every job.

``Jobs.run`` carries out a step's effects (effects.py): it arms and cancels the
APScheduler jobs, launches attempts, sets expiry deadlines, and queues stats
polls. The jobs' callbacks live here too: an attempt's outcome and timeout, a
retry, the expiry watchdog, the stats batch, and the report and capabilities
groups. Each turns into an event that goes through ``apply`` (the engine's
step, commit and effects), under the engine's lock, only if its token says it
is still meant. Drivers are never called under that lock: ``is_working`` and
``get_volume_stats`` are asked before or after it, and a ``Launch`` waits in a
queue until the lock is released, when ``settle`` starts it (in virtual time,
the attempt runs there and then, inline) and hands notifications to the sinks.

A store that refuses an event does not lose it: ``STORE_RETRY`` later it is
tried again (a ``redo`` job, or the expiry deadline itself), logged each time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Protocol

from loguru import logger

from statecore.attempts import AttemptOutcome
from statecore.deadlines import Deadlines
from statecore.effects import ArmExpiry, ArmJob, CancelJob, DisarmExpiry, Effects, Launch, PollStats
from statecore.errors import InitTimeout, StatecoreError
from statecore.ledger import Ledger
from statecore.machine import accepting
from statecore.probes import backend_state
from statecore.records import TransitionRecord
from statecore.registry import GroupKey, Registry
from statecore.retention import Retention
from statecore.runtime import Runtime
from statecore.service import Service
from statecore.store import StoreUnavailable
from statecore.table import Event, State, rulebook
from statecore.timers import JobKind, job_id_of

STORE_RETRY = timedelta(seconds=1)
EXPIRING = accepting(rulebook("volume"), Event.HEARTBEAT_EXPIRED)
"""States the watchdog can take down (the table's sources of ``heartbeat_expired``)."""
RETRYING = accepting(rulebook("volume"), Event.RETRY)
"""States a retry job can start an attempt from (the table's sources of ``retry``)."""
HEARTBEATEN = frozenset({State.UP, State.DOWN})
"""SPEC-SILENT (docs/decisions.md): only an initialized service in these states is heartbeated."""


TimerEvent = tuple[str, Event, Callable[[Service], bool], BaseException | None]
"""(service id, event, the check that it is still meant, the attempt's error)."""


class Interrupted(InitTimeout):
    """The engine stopped while an attempt was in flight; counted as a failed, recoverable attempt."""


class Apply(Protocol):
    def __call__(
        self, service: Service, event: Event, *, strict: bool, error: BaseException | None = None
    ) -> TransitionRecord | None:
        """Step, commit and run the effects, with the engine's lock held by the caller."""
        ...


class Jobs:
    def __init__(
        self, registry: Registry, runtime: Runtime, ledger: Ledger, lock: threading.RLock, apply: Apply
    ) -> None:
        self.registry, self.ledger, self.lock, self.apply = registry, ledger, lock, apply
        self.clock, self.timers, self.prober = runtime.clock, runtime.timers, runtime.prober
        self.attempts = runtime.attempts(self.on_outcomes, self._attempt_wanted)
        self.workers = runtime.workers()
        self.expiries = Deadlines(self.timers, job_id_of(JobKind.WATCHDOG), self.on_expiries, runtime.expiry_resolution)
        self._flush = ledger.delivery.poke  # Ledger.flush, one call fewer on every event
        self._launches: list[Launch] = []
        """Attempts to start once the engine lock is released (``settle``)."""
        self._backend_writes: dict[str, str] = {}
        self._write_order = threading.Lock()
        """Polled backend_state changes waiting for one write to the store."""
        self._stats_due: dict[str, None] = {}
        """Volumes waiting for the ``stats`` job, in the order they came up (a dict: replays keep it)."""
        self._store_down = False
        self.on_fenced: Callable[[Sequence[str]], None] = lambda sids: None
        """Set by the engine (``Leases.drop``): stop driving services another engine claimed."""
        self._statuses_seen: dict[GroupKey, int | None] = {}
        """Per report group, the store's ``statuses_version`` when it last adopted statuses."""
        self._callbacks: dict[JobKind, Callable[[str, int], None]] = {
            JobKind.RETRY: self.on_retry, JobKind.TIMEOUT: self.on_timeout,
        }  # fmt: skip
        self._runners: dict[type, Callable[..., None]] = {
            ArmJob: self._arm_job, CancelJob: self._cancel_job, Launch: self._launch,
            ArmExpiry: self.expiries.arm, DisarmExpiry: self.expiries.disarm, PollStats: self._poll_stats_soon,
        }  # fmt: skip
        """Each effect's runner, called with the effect's fields (an expiry goes straight to its deadline)."""

    # -- effects: run once a step is committed, under the engine lock --------------------------

    def run(self, effects: Effects) -> None:
        runners = self._runners
        for effect in effects:
            runners[type(effect)](*effect)

    def _arm_job(self, kind: JobKind, sid: str, when: datetime, token: int) -> None:
        self.timers.at(job_id_of(kind, sid), when, self._callbacks[kind], sid, token)

    def _cancel_job(self, kind: JobKind, sid: str) -> None:
        self.timers.cancel(job_id_of(kind, sid))

    def _launch(self, sid: str, token: int) -> None:
        self._launches.append(Launch(sid, token))

    def settle(self) -> None:
        """After the engine lock is released: start the queued attempts, then deliver notifications.
        (An empty queue is read without the lock: whoever queues next settles after it.)"""
        if self._launches:
            self._start_launches()
        if self.ledger.fenced:
            self._drop_fenced()
        self._flush()

    def _drop_fenced(self) -> None:
        with self.lock:
            fenced, self.ledger.fenced = sorted(self.ledger.fenced), set()
        self.on_fenced(fenced)

    def forget(self, service: Service) -> None:
        """A service this engine stops driving: its jobs, deadline and pending polls go; an
        attempt still running finds no service when it ends, and is ignored. Lock held."""
        sid = service.id
        for job_id, _ in self.timers.jobs():
            if job_id.split("|")[1:2] == [sid]:
                self.timers.cancel(job_id)
        self.expiries.disarm(sid)
        self._stats_due.pop(sid, None)
        self._backend_writes.pop(sid, None)
        self._launches = [launch for launch in self._launches if launch.sid != sid]

    def _start_launches(self) -> None:
        with self.lock:
            launches, self._launches = self._launches, []
        for launch in launches:
            service = self.registry.services.get(launch.sid)
            if service is None:
                continue  # dropped since
            driver = service.driver if service.driver is not None else _Unloadable(service.load_error)
            self.attempts.launch(launch.sid, launch.token, driver)

    def _poll_stats_soon(self, sid: str, when: datetime) -> None:
        """A volume's stats are polled at the instant it enters ``up``. Every volume that comes up
        before the ``stats`` job runs joins its batch, so a fleet coming up arms one job (and one
        re-entering ``up`` while the job is pending costs a dict write, not a job)."""
        if not self._stats_due:
            self.timers.at(job_id_of(JobKind.STATS), when, self.on_stats_due)
        self._stats_due[sid] = None

    # -- one store-outage policy ---------------------------------------------------------------

    def refused(self, service: Service, what: str, failure: StoreUnavailable) -> datetime:
        """Log that the store refused ``what``; returns when it is to be tried again."""
        logger.error(
            "{}: {} not recorded ({}); retrying in {:g} s", service.host, what, failure, STORE_RETRY.total_seconds()
        )
        return self.clock.now() + STORE_RETRY

    def timer_event(
        self, sid: str, event: Event, check: Callable[[Service], bool], error: BaseException | None = None
    ) -> None:
        """A timer's event, if ``check`` says it is still meant; a refusing store gets it again later."""
        self.timer_events([(sid, event, check, error)])

    def timer_events(self, items: Sequence[TimerEvent]) -> None:
        """Timer events due together, in one group commit (one event: a plain commit); if the store
        refuses it, every event that was meant is tried again a second later, each on its own."""
        meant: list[TimerEvent] = []
        with self.lock:
            try:
                with self.ledger.batch() if len(items) > 1 else nullcontext():  # one: no batch to build
                    for item in items:
                        service = self.registry.services.get(item[0])
                        if service is not None and item[2](service):
                            meant.append(item)
                            self.apply(service, item[1], strict=False, error=item[3])
            except StoreUnavailable as failure:
                for sid, event, check, error in meant:
                    when = self.refused(self.registry.services[sid], event.value, failure)
                    redo = job_id_of(JobKind.REDO, sid, event.value)
                    self.timers.at(redo, when, self.timer_event, sid, event, check, error)
        self.settle()

    # -- starting and recovering --------------------------------------------------------------

    def register(self, services: Sequence[Service], *, running: bool) -> None:
        """Services now ours (registered, or taken over from another engine) join their groups;
        if the engine runs, they start, or carry on from their stored state."""
        self._join_groups(services, running=running)
        if running:
            self.bring_up_all(services)

    def _join_groups(self, services: Sequence[Service], *, running: bool) -> None:
        with self.lock:
            for service in services:
                for group in self.registry.add(service):
                    if running:
                        self.arm_group(group)

    def bring_up_all(self, services: Sequence[Service]) -> None:
        """New services start together (one group commit); adopted ones carry on, one by one."""
        self.start_all([s for s in services if s.state is State.STARTING])
        for service in services:
            if service.state is not State.STARTING:
                self.bring_up(service, recover=service.id in self.registry.adopted)
                self.registry.adopted.discard(service.id)
        self.settle()

    def bring_up(self, service: Service, recover: bool, resume: bool = False) -> None:
        """A new service starts; a stored one (``recover``) carries on from its state with timers
        derived from it (``resume``: see ``_recover``). A store outage does not strand it in
        ``starting``: it is tried again later."""
        if service.state is State.STARTING:
            self.start_all([service])
            return
        if recover:
            try:
                self._recover(service, resume=resume)
            except StoreUnavailable as failure:
                self._start_later(service, recover, failure, resume)
        self.settle()

    def start_all(self, services: Sequence[Service]) -> None:
        """New services start together: their drivers load (no lock held), then their ``start``
        transitions share one group commit. A refusing store has each tried again a second later."""
        loaded = [(service, service.load_driver()) for service in services]
        with self.lock:
            try:
                with self.ledger.batch():
                    for service, error in loaded:  # one already started (a race) is left as it is
                        self.apply(service, Event.START, strict=False, error=error)
            except StoreUnavailable as failure:
                for service, _ in loaded:
                    self._start_later(service, False, failure)
        self.settle()

    def _start_later(self, service: Service, recover: bool, failure: StoreUnavailable, resume: bool = False) -> None:
        when = self.refused(service, "start", failure)
        self.timers.at(job_id_of(JobKind.REDO, service.id, "start"), when, self.bring_up, service, recover, resume)

    def _recover(self, service: Service, *, resume: bool = False) -> None:
        """Derive the timers of a stored service; an overdue retry or expiry fires at once.
        ``resume``: this engine's own service, back after a lapse in which nobody else claimed it
        (leases.py): its driver is the one it had, so an ``up`` one carries on without ``restart``."""
        if service.state is not State.FAILED_PERMANENT and not resume:
            service.load_driver()
        with self.lock:
            state, now = service.state, self.clock.now()
            if state in EXPIRING or state is State.INITIALIZING:  # the dead engine's deadline died with it
                self.expiries.arm(service.id, service.deadline())
            if service.next_retry_at is not None and state in RETRYING:
                service.retry_token += 1
                self.run([ArmJob(JobKind.RETRY, service.id, max(now, service.next_retry_at), service.retry_token)])
            if state is State.INITIALIZING:
                interrupted = Interrupted(f"interrupted: the engine stopped during attempt {service.attempt}")
                self.apply(service, Event.INIT_FAILED, strict=True, error=interrupted)
            elif service.initialized and state in (State.UP, State.DOWN) and not resume:
                self.apply(service, Event.RESTART, strict=True)

    def resume(self, services: Sequence[Service]) -> None:
        """Services this engine dropped when it could not renew, and took back unchanged."""
        self._join_groups(services, running=True)
        for service in services:
            self.bring_up(service, recover=True, resume=True)
        self.settle()

    # -- attempts, retries and the expiry watchdog ---------------------------------------------

    def _attempt_wanted(self, sid: str, token: int) -> bool:
        """Read without the lock (a glance): a stale answer only runs or skips one driver call."""
        service = self.registry.services.get(sid)
        return service is not None and service.attempt_token == token and service.state is State.INITIALIZING

    def on_outcomes(self, outcomes: Sequence[AttemptOutcome]) -> None:
        """Attempts that finished (in real time, all that finished since the last such job: one
        group commit for a fleet coming up); a late outcome of an abandoned attempt is ignored."""
        self.timer_events([self._outcome_event(*outcome) for outcome in outcomes])

    def _outcome_event(self, sid: str, token: int, error: BaseException | None) -> TimerEvent:
        def current(service: Service) -> bool:
            if service.attempt_token != token or service.state is not State.INITIALIZING:
                logger.debug("late outcome of an abandoned attempt of {} ignored", sid)
                return False
            self.timers.cancel(job_id_of(JobKind.TIMEOUT, sid))
            return True

        return sid, Event.INIT_SUCCEEDED if error is None else Event.INIT_FAILED, current, error

    def on_timeout(self, sid: str, token: int) -> None:
        service = self.registry.services.get(sid)
        if service is None:
            return  # dropped (fenced) as its timeout came due
        limit = service.settings.init_timeout_for(service.binary)
        error = InitTimeout(f"attempt {service.attempt} did not finish within {limit:g} s")
        self.timer_event(
            sid, Event.INIT_FAILED, lambda s: s.attempt_token == token and s.state is State.INITIALIZING, error
        )

    def on_retry(self, sid: str, token: int) -> None:
        self.timer_event(sid, Event.RETRY, lambda s: s.retry_token == token and s.state in RETRYING)

    def on_expiries(self) -> None:
        """The one expiry job: services whose deadline came and went without a heartbeat go down."""
        with self.lock:
            now = self.clock.now()
            try:
                with self.ledger.batch() as batch:  # a fleet that lost its database expires in one commit
                    self.expiries.arm_many(self._expire(self.expiries.pop_due(now), now))
            except StoreUnavailable as failure:
                for service in batch.services:
                    self.expiries.arm(service.id, self.refused(service, Event.HEARTBEAT_EXPIRED.value, failure))
        self.settle()

    def _expire(self, due: Sequence[str], now: datetime) -> list[tuple[str, datetime]]:
        """Take down the services whose deadline has passed; returns the new deadlines of those
        whose heartbeats moved it since it was armed (nearly all of a live fleet), armed together."""
        moved, services, expiring = [], self.registry.services, EXPIRING
        for sid in due:
            service = services.get(sid)
            if service is None or service.state not in expiring:
                continue  # initializing: the attempt's outcome decides; down or failed: nothing to expire
            deadline = service.last_ok + service.settings.down_window  # its deadline(), a call fewer
            if now < deadline:
                moved.append((sid, deadline))
            else:
                self.apply(service, Event.HEARTBEAT_EXPIRED, strict=False)
        return moved

    # -- stats --------------------------------------------------------------------------------

    def on_stats_due(self) -> None:
        """Each poll goes to the workers: in real time a ``get_volume_stats`` that hangs holds one
        worker rather than the batch, and this job returns at once; in virtual time, inline, in order."""
        with self.lock:
            due, self._stats_due = self._stats_due, {}
        for sid in due:
            self.workers.submit(self.on_stats, sid)

    def on_stats(self, sid: str) -> None:
        service = self.registry.services.get(sid)
        if service is not None:
            self.poll_stats(service)

    def poll_stats(self, *services: Service) -> None:
        """Poll volumes' stats (the drivers asked first, with no lock held; then their answers taken
        under one lock); a changed backend_state is written through, so every host's service list
        (``statecore service-list``, ``statecore serve``) shows it, not just ours."""
        answers = [
            (service, backend_state(service.host, service.driver))
            for service in services
            if service.state is State.UP and service.driver is not None
        ]
        changed, registered = False, self.registry.services
        with self.lock:
            for service, value in answers:
                if (
                    service.state is not State.UP
                    or value == service.backend_state
                    or registered.get(service.id) is not service
                ):
                    continue  # it left up (or this engine) while its stats were asked for, or nothing changed
                service.backend_state = value
                changed = changed or not self._backend_writes
                self._backend_writes[service.id] = value
        if changed:  # the changes of polls that answer together are written together
            self.timers.at(job_id_of(JobKind.STATS, "write"), self.clock.now(), self._write_backend_states)

    def _write_backend_states(self) -> None:
        """Writes go in the order their values were taken (``_write_order``): two write jobs running
        at once in real time cannot leave an older value in the store after a newer one."""
        with self._write_order:
            with self.lock:
                values, self._backend_writes = self._backend_writes, {}
                services = self.registry.services
                leases = {sid: services[sid].generation for sid in values if sid in services}
                values = {sid: value for sid, value in values.items() if sid in leases}
            try:
                self.ledger.store.set_backend_states(values, leases)
            except Exception as error:  # the next change, or the next transition's commit, writes them
                logger.warning("backend_state of {} not stored ({})", ", ".join(sorted(values)), error)

    # -- report and capabilities groups: one job per period, not one per service -------------------

    def arm_periodic(self, retention: float) -> None:
        """At start: every report and capabilities group's job, and the history's retention job."""
        for group in list(self.registry.groups):
            self.arm_group(group)
        Retention(self.ledger.store, self.clock, self.timers, retention).arm()

    def arm_group(self, key: GroupKey) -> None:
        handler = self.on_report if key.kind is JobKind.REPORT else self.on_capabilities
        first = self.clock.now() + timedelta(seconds=key.seconds)
        self.timers.every(key.job_id, key.seconds, first, handler, key)

    def on_report(self, key: GroupKey) -> None:
        """Heartbeat every initialized service whose driver works, in one batch to the store."""
        with self.lock:
            members = [s for s in self.registry.groups[key].values() if s.initialized and s.state in HEARTBEATEN]
        working = self.prober.working(members, key.probe_limit)
        now = self.clock.now()
        try:
            recorded = self.ledger.store.record_heartbeats({s.id: s.generation for s in working}, now)
        except Exception as error:
            if not self._store_down:
                logger.error("store disconnected: heartbeats not recorded ({})", error)
                self._store_down = True
            return
        if self._store_down:
            logger.info("store reconnected: heartbeats recorded again")
            self._store_down = False
        with self.lock:
            try:
                with self.ledger.batch() as batch:  # the services coming back up share one commit
                    services, up = self.registry.services, State.UP
                    for sid in recorded:
                        service = services.get(sid)
                        if service is None:
                            continue  # dropped (fenced) while its heartbeat was on the way
                        if service.state is up:  # nearly all of them, every report: no call
                            service.last_ok = service.updated_at = now
                        else:
                            self._heartbeat(service, now)
            except StoreUnavailable as failure:
                for service in batch.services:
                    logger.error("{}: heartbeat not recorded ({}); the next report retries", service.host, failure)
        self.settle()
        self._adopt_statuses(key)

    def _heartbeat(self, service: Service, now: datetime) -> None:
        if service.state is State.UP:
            service.last_ok = service.updated_at = now
        elif service.state is State.DOWN:
            service.updated_at = now
            self.apply(service, Event.HEARTBEAT, strict=False)

    def _adopt_statuses(self, key: GroupKey) -> None:
        """An admin may disable or enable a service in the store from another host (``statecore
        disable``); the owning engine takes the change over and audits it, within a report interval.
        A database is read without the lock, and what it said is taken only while no commit has
        been asked for or done since (a local disable not yet written, or written after the read,
        must not be undone); otherwise the next report reads again. A memory store is read and
        compared under the lock at once."""
        members, store, ledger = self.registry.groups[key], self.ledger.store, self.ledger
        version = store.statuses_version()
        if version is not None and self._statuses_seen.get(key) == version:
            return  # nothing was disabled or enabled since this group last looked
        with nullcontext() if ledger.unlocked else self.lock:
            marks = (ledger.writes_asked, ledger.writes_done)
            try:
                statuses = store.statuses(list(members))
            except Exception:
                return  # the store outage is already logged by the heartbeat above
            with self.lock:
                self._take_statuses(members, statuses, version, key, marks)
        self.settle()

    def _take_statuses(
        self,
        members: dict[str, Service],
        statuses: dict[str, tuple[bool, str | None]],
        version: int | None,
        key: GroupKey,
        marks: tuple[int, int],
    ) -> None:
        ledger = self.ledger
        for sid, (disabled, reason) in statuses.items():
            service = members.get(sid)
            if service is None or (service.disabled, service.disabled_reason) == (disabled, reason):
                continue
            if service.pinned or (ledger.writes_asked, ledger.writes_done) != marks:
                return  # a commit came between the read and now: read again next time
            try:
                ledger.set_status(service, disabled, reason, self.clock.now())
            except StoreUnavailable:
                return  # the next report reads them again
            if ledger.unlocked:  # our own commit took a ticket and was served (a memory store's takes none)
                marks = (marks[0] + 1, marks[1] + 1)
        self._statuses_seen[key] = version

    def on_capabilities(self, key: GroupKey) -> None:
        """While up: a driver that stopped working is lost; a volume driver's stats are refreshed."""
        with self.lock:
            members = [s for s in self.registry.groups[key].values() if s.state is State.UP]
        working = {s.id for s in self.prober.working(members, key.probe_limit)}
        lost = [service for service in members if service.id not in working]
        for service in lost:
            self.timer_event(service.id, Event.DRIVER_LOST, lambda s: s.state is State.UP)
        self.poll_stats(*(s for s in members if s.binary == "volume" and s.id in working))


class _Unloadable:
    """Stands in for a driver that could not be loaded after a restart: every attempt re-raises why."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error or StatecoreError("driver was never loaded")

    def do_setup(self) -> None:
        raise self.error

    def check_for_setup_error(self) -> None:
        raise self.error
