"""A small reference model of the lifecycle, written from the behaviour contract (BEHAVIOR.md), not the engine.

It knows nothing of ``statecore``: states and events are plain strings, time is
whole seconds since the engine started, and every timer is a named instant.
The property tests run it side by side with the real engine and compare.

The liveness boundary is the contract's (BEHAVIOR.md section 5, Cinder's formula):
a service is alive, and the grace window of ``failed_recoverable`` open, while
``now - last_ok <= service_down_time``, inclusive; ``heartbeat_expired`` fires at
exactly ``last_ok + service_down_time``. Both hold at that one instant because of
the order below: the expiry watchdog is judged last, after everything else due
then. So an attempt that fails at exactly ``last_ok + service_down_time`` still
lands in ``failed_recoverable`` (grace open), and the watchdog then takes it
``down`` at the same instant with ``service.down``.

Where BEHAVIOR.md is silent, the model states a decision; each such point is
marked ``SPEC-SILENT`` where it is coded:

- jobs due at one instant run one at a time, in (instant, kind, id) order with
  the kinds ordered ``caps`` < ``outcome`` < ``report`` < ``retry`` <
  ``timeout`` < the expiry ``watchdog``, and the queue is read again after
  every job: a job armed during an instant for that same instant (the outcome
  of an attempt a retry began, say) runs in its kind's place among the jobs
  still waiting at that instant. So an attempt that ends exactly at
  ``init_timeout`` counts, a heartbeat due exactly at ``last_ok +
  service_down_time`` keeps the service up, and the watchdog judges a service
  after whatever else happened to it at its instant;
- the watchdog skips an ``initializing`` service, as BEHAVIOR.md section 4 asks,
  and drops its deadline rather than keeping it: the attempt's outcome decides,
  with the grace guard (a failure after the window closed goes straight to
  ``down``);
- an attempt's outcome is a job that stays armed after a timeout until its
  instant and is then ignored; a hung attempt arms none (an older, stale one
  may still be pending);
- the report job heartbeats only an initialized service in ``up`` or ``down``;
- a notification carries the counters as they are after the row's actions
  (``attempt`` of init.retry / init.reset is the new attempt's number).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

Result = Literal["ok", "fail", "config"]

STARTING, INITIALIZING, FAILED_RECOVERABLE = "starting", "initializing", "failed_recoverable"
FAILED_PERMANENT, UP, DOWN = "failed_permanent", "up", "down"
EVENTS = ("start", "init_succeeded", "init_failed", "retry", "heartbeat", "heartbeat_expired", "driver_lost", "reset")

TABLE_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        (STARTING, "start"),
        (INITIALIZING, "init_succeeded"),
        (INITIALIZING, "init_failed"),
        (FAILED_RECOVERABLE, "retry"),
        (FAILED_RECOVERABLE, "heartbeat_expired"),
        (UP, "heartbeat_expired"),
        (UP, "driver_lost"),
        (DOWN, "heartbeat"),
        (DOWN, "retry"),
        (FAILED_PERMANENT, "reset"),
        (FAILED_RECOVERABLE, "reset"),
        (DOWN, "reset"),
    }
)
"""The (state, event) pairs of BEHAVIOR.md section 4; any other pair is refused."""

JOB_ORDER = ("caps", "outcome", "report", "retry", "timeout", "expire")
"""SPEC-SILENT: the order of the kinds of job due at the same instant (the engine's job ids sort this way);
the expiry watchdog comes last, so it judges a service after everything else due at its instant."""


@dataclass(frozen=True)
class Options:
    """The settings the model needs, in whole seconds."""

    report_interval: int = 1
    service_down_time: int = 5
    stats_interval: int = 3
    periodic_interval: int = 2
    init_timeout: int = 3
    reinit_driver_count: int = 3
    reinit_backoff_max: int = 300
    backup_periodic_initialization: bool = False

    def caps_interval(self, binary: str) -> int:
        return self.stats_interval if binary == "volume" else self.periodic_interval


@dataclass
class DriverKnobs:
    """What the test told the scripted driver; read when an attempt starts, as the driver does."""

    result: Result = "ok"
    results: list[Result] = field(default_factory=list)
    """Results of the next attempts, first in first used; then ``result`` each."""
    one_off: list[int | None] = field(default_factory=list)
    """Durations of the next attempts, first in first used (None: it hangs); then 0 s each."""
    working: bool = True
    heartbeats_blocked: bool = False

    def next_attempt(self) -> tuple[Result, int | None]:
        """The next attempt's result and duration (None: it never finishes)."""
        result = self.results.pop(0) if self.results else self.result
        return result, self.one_off.pop(0) if self.one_off else 0


@dataclass(frozen=True)
class PendingOutcome:
    at: int
    attempt_id: int
    result: Result


@dataclass(frozen=True)
class Note:
    """One expected notification: its type, its move, and the counters its payload carries."""

    event_type: str
    from_state: str
    to_state: str
    event: str
    attempt: int
    retries_left: int | None
    next_retry_at: int | None


@dataclass
class ServiceModel:
    binary: str
    options: Options
    driver: DriverKnobs = field(default_factory=DriverKnobs)
    state: str = STARTING
    attempt: int = 0
    total_attempts: int = 0
    last_ok: int = 0
    initialized: bool = False
    next_retry_at: int | None = None
    expiry_at: int | None = None
    timeout_at: int | None = None
    attempt_id: int = 0
    outcome: PendingOutcome | None = None
    notes: list[Note] = field(default_factory=list)
    _moved: tuple[str, str, str, str] | None = None

    # -- rules of BEHAVIOR.md section 4 -------------------------------------------------------

    def retry_allowed(self, attempts: int) -> bool:
        if self.binary == "backup":
            return self.options.backup_periodic_initialization
        limit = self.options.reinit_driver_count
        return limit == 0 or attempts < 1 + limit

    def retry_wait(self) -> int:
        """Retry k waits 2^(k-1) s capped (volume), or periodic_interval (backup); k = attempts so far."""
        if self.binary == "backup":
            return self.options.periodic_interval
        return min(self.options.reinit_backoff_max, 2 ** (self.attempt - 1))

    def grace_open(self, now: int) -> bool:
        """BEHAVIOR.md section 5: inclusive, so the expiry instant itself is still inside the window."""
        return now - self.last_ok <= self.options.service_down_time

    def allows(self, event: str) -> bool:
        return (self.state, event) in TABLE_PAIRS

    def jobs(self) -> set[str]:
        """The kinds of timer armed for this service."""
        armed = {"expire": self.expiry_at, "retry": self.next_retry_at, "timeout": self.timeout_at}
        kinds = {kind for kind, at in armed.items() if at is not None}
        return kinds | ({"outcome"} if self.outcome is not None else set())

    # -- transitions ------------------------------------------------------------------------

    def retries_left(self) -> int | None:
        """None: unlimited."""
        if self.binary == "backup":
            return None if self.options.backup_periodic_initialization else 0
        limit = self.options.reinit_driver_count
        return None if limit == 0 else max(0, 1 + limit - self.attempt)

    def _move(self, to: str, notification: str, event: str) -> None:
        assert self._moved is None, "one transition per event"
        self._moved = (f"{self.binary}.{notification}", self.state, to, event)
        self.state = to

    def seal(self) -> None:
        """SPEC-SILENT: after an event's effects, its notification carries the counters as they are now."""
        if self._moved is not None:
            self.notes.append(Note(*self._moved, self.attempt, self.retries_left(), self.next_retry_at))
            self._moved = None

    def _restart_grace(self, now: int) -> None:
        self.last_ok = now
        self.expiry_at = now + self.options.service_down_time

    def _begin_attempt(self, now: int) -> None:
        self.next_retry_at = None
        self.attempt += 1
        self.total_attempts += 1
        self.attempt_id += 1
        self.timeout_at = now + self.options.init_timeout
        result, duration = self.driver.next_attempt()
        if duration is not None:  # SPEC-SILENT: replaces any stale outcome job; a hung attempt leaves it
            self.outcome = PendingOutcome(now + duration, self.attempt_id, result)

    def _arm_retry(self, now: int) -> None:
        self.next_retry_at = now + self.retry_wait()

    def _disarm(self) -> None:
        self.next_retry_at = self.expiry_at = self.timeout_at = None

    def _mark_live(self, now: int) -> None:
        self.initialized = True
        self.next_retry_at = None
        self._restart_grace(now)

    def start(self, now: int) -> None:
        self._move(INITIALIZING, "init.start", "start")
        self._restart_grace(now)
        self._begin_attempt(now)
        self.seal()

    def reset(self, now: int) -> None:
        assert self.allows("reset")
        self._move(INITIALIZING, "init.reset", "reset")
        self.initialized = False
        self.attempt = 0
        self._restart_grace(now)
        self._begin_attempt(now)
        self.seal()

    def _succeed(self, now: int) -> None:
        self._move(UP, "init.success", "init_succeeded")
        self._mark_live(now)

    def _fail(self, now: int, unrecoverable: bool) -> None:
        self.timeout_at = None
        if unrecoverable or not self.retry_allowed(self.attempt):
            self._move(FAILED_PERMANENT, "init.failure", "init_failed")
            self._disarm()
            return
        self._move(FAILED_RECOVERABLE if self.grace_open(now) else DOWN, "init.failure", "init_failed")
        self._arm_retry(now)

    def _driver_lost(self, now: int) -> None:
        self.initialized = False
        if not self.retry_allowed(1):
            self._move(FAILED_PERMANENT, "driver.lost", "driver_lost")
            self._disarm()
            return
        self._move(FAILED_RECOVERABLE, "driver.lost", "driver_lost")
        self.attempt = 1  # counts like a failed first attempt: retry 1 follows
        self._restart_grace(now)
        self._arm_retry(now)

    # -- what each timer does when it falls due -------------------------------------------------

    def on_outcome(self, now: int) -> None:
        pending, self.outcome = self.outcome, None
        assert pending is not None
        if pending.attempt_id != self.attempt_id or self.state != INITIALIZING:
            return  # the late outcome of an abandoned attempt
        if pending.result == "ok":
            self.timeout_at = None
            self._succeed(now)
        else:
            self._fail(now, unrecoverable=pending.result == "config")

    def on_timeout(self, now: int) -> None:
        self.timeout_at = None
        if self.state == INITIALIZING:
            self._fail(now, unrecoverable=False)

    def on_retry(self, now: int) -> None:
        self.next_retry_at = None
        if self.state in (FAILED_RECOVERABLE, DOWN):
            self._move(INITIALIZING, "init.retry", "retry")
            self._begin_attempt(now)

    def on_expire(self, now: int) -> None:
        self.expiry_at = None  # SPEC-SILENT: dropped for an initializing service, whose outcome decides
        if self.state in (UP, FAILED_RECOVERABLE):
            self._move(DOWN, "service.down", "heartbeat_expired")

    def on_report(self, now: int) -> None:
        # SPEC-SILENT: only an initialized service in up or down is heartbeated.
        if not (self.initialized and self.state in (UP, DOWN) and self.driver.working):
            return
        if self.driver.heartbeats_blocked:
            return
        if self.state == UP:
            self._restart_grace(now)  # a recorded heartbeat moves last_ok, and the expiry with it
        else:
            self._move(UP, "service.up", "heartbeat")
            self._mark_live(now)

    def on_caps(self, now: int) -> None:
        if self.state == UP and not self.driver.working:
            self._driver_lost(now)

    def due(self, kind: str, now: int) -> bool:
        instant = {
            "expire": self.expiry_at,
            "retry": self.next_retry_at,
            "timeout": self.timeout_at,
            "outcome": None if self.outcome is None else self.outcome.at,
        }[kind]
        return instant is not None and instant <= now


@dataclass
class ReferenceModel:
    """Both services and the shared report and capabilities jobs, in whole virtual seconds."""

    services: dict[str, ServiceModel]
    now: int = 0
    _group_ran: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        for service in self.services.values():
            service.start(self.now)

    def advance(self, seconds: int) -> None:
        target = self.now + seconds
        for instant in range(self.now, target + 1):
            self.now = instant
            self._run_instant(instant)
        self.now = target

    def _groups_due(self, instant: int) -> Iterator[tuple[str, str]]:
        """The report job and each binary's capabilities job: every interval, first one interval after start."""
        for binary, service in sorted(self.services.items()):
            key = f"caps|{binary}"
            if self._periodic_due(key, service.options.caps_interval(binary), instant):
                yield "caps", binary
        first = next(iter(self.services.values()))
        if self._periodic_due("report", first.options.report_interval, instant):
            yield "report", ""

    def _periodic_due(self, key: str, interval: int, instant: int) -> bool:
        return instant > 0 and instant % interval == 0 and self._group_ran.get(key) != instant

    def _run_instant(self, instant: int) -> None:
        """SPEC-SILENT: one job at a time, the first due in (kind, id) order, the queue read again after each."""
        while (job := self._next_job(instant)) is not None:
            self._run(*job, instant)

    def _next_job(self, instant: int) -> tuple[str, str] | None:
        due = [*self._groups_due(instant)] + [
            (kind, binary)
            for binary, service in self.services.items()
            for kind in ("expire", "outcome", "retry", "timeout")
            if service.due(kind, instant)
        ]
        return min(due, key=lambda job: (JOB_ORDER.index(job[0]), job[1]), default=None)

    def _run(self, kind: str, binary: str, instant: int) -> None:
        if kind == "report":
            self._group_ran["report"] = instant
            for service in self.services.values():
                service.on_report(instant)
                service.seal()
            return
        service = self.services[binary]
        if kind == "caps":
            self._group_ran[f"caps|{binary}"] = instant
            service.on_caps(instant)
        else:  # due: the queue is read again before every job
            getattr(service, f"on_{kind}")(instant)
        service.seal()
