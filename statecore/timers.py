"""Timed moves as APScheduler 3 jobs, in real time or in virtual time.

Real time uses a ``BackgroundScheduler``. Virtual time uses ``VirtualScheduler``:
the same jobs in the same memory job store, fired at their exact instants when the
owner advances the clock. It does the store bookkeeping *before* running a job, so
a job that re-arms itself under its own id keeps the new schedule (APScheduler's
inline executor gets this wrong).

Jobs due at one instant run one at a time in ``JobKind`` order (then by id), and
the queue is read again after each: a job armed during an instant for that same
instant takes its kind's place among those still waiting. So the expiry
``watchdog``, last, judges liveness after everything else that happens at its
instant, an attempt outcome armed there by a retry included (docs/decisions.md).

Every job is added with an explicit ``next_run_time``: APScheduler would
otherwise read the system clock, which is meaningless in virtual time.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from apscheduler.executors.debug import DebugExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED, BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from statecore.clock import Clock, VirtualClock


class JobKind(StrEnum):
    """What a job is for; its value is the job id's prefix (``retry|volume:node1@lvm``)."""

    LEASE = "lease"
    """Lease renewal, and a standby's watch for leases that expire."""
    OUTCOME = "outcome"
    """An attempt's result, delivered at the instant the driver finished."""
    TIMEOUT = "timeout"
    """An attempt's ``init_timeout``."""
    RETRY = "retry"
    """A backoff retry or a periodic re-init."""
    REPORT = "report"
    """A report group's heartbeats."""
    CAPS = "caps"
    """A capabilities group's ``is_working()`` round (and volume stats)."""
    STATS = "stats"
    """Stats of volumes that have just come up."""
    REDO = "redo"
    """A start or a timer's event the store refused, tried again."""
    NOTIFY = "notify"
    """Notifications a sink refused, offered again (virtual time)."""
    PURGE = "purge"
    """History older than ``history_retention`` deleted (retention.py)."""
    SAMPLE = "sample"
    """The simulator's look at a service, for its plot."""
    WATCHDOG = "watchdog"
    """The expiry of every service's heartbeat deadline."""


SAME_INSTANT_ORDER: tuple[JobKind, ...] = (
    JobKind.LEASE, JobKind.CAPS, JobKind.NOTIFY, JobKind.OUTCOME, JobKind.PURGE, JobKind.REDO, JobKind.REPORT,
    JobKind.RETRY,
    JobKind.SAMPLE, JobKind.STATS, JobKind.TIMEOUT, JobKind.WATCHDOG,
)  # fmt: skip
"""The order of jobs due at one instant. What it decides, and why:

- ``outcome`` before ``timeout``: an attempt that finishes exactly at its limit counts;
- ``report`` before ``watchdog``: a heartbeat due at ``last_ok + service_down_time`` keeps the
  service alive (BEHAVIOR.md section 5: alive while ``now - last_ok <= service_down_time``);
- ``lease`` first: a service taken over or lost at an instant is driven by its new engine
  for everything else due at that instant;
- ``watchdog`` last: liveness is judged once everything else due at the instant has happened, so
  an attempt that fails exactly at the deadline lands in ``failed_recoverable`` (grace still
  open) and then expires with ``service.down``, rather than the expiry being skipped;
- ``purge`` only deletes history older than the retention, which no job of the same instant
  writes, so its place decides nothing; it sits where its name puts it;
- the others keep the order they have always had, which no rule of the contract decides.

A job id whose prefix is no kind runs after every kind."""

_RANK: dict[str, int] = {kind.value: rank for rank, kind in enumerate(SAME_INSTANT_ORDER)}
_UNRANKED = len(SAME_INSTANT_ORDER)


def job_id_of(kind: JobKind, *key: str) -> str:
    """``kind`` joined as it is: its ``.value`` (an Enum property) cost more than the join."""
    return "|".join((kind, *key))


def _rank(job_id: str) -> int:
    return _RANK.get(job_id.partition("|")[0], _UNRANKED)


SHUTDOWN_WAIT = 5.0
"""Seconds a clean stop waits for the jobs already running (a commit, a store retry) to finish."""
SHUTDOWN_POLL = 0.01
JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
_NO_KWARGS: dict[str, Any] = {}
"""The keyword arguments of every one-shot job ``Timers.at`` arms: none, one dict for all (never written)."""
ONE_SHOT_INSTANCES = 64


class _OneShot(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type information
    """The trigger of every job ``Timers.at`` arms: the job runs once, at its own ``next_run_time``,
    and never again. Stateless, so one instance serves them all: an armed job is one object for the
    collector to walk, not two. (APScheduler asks a trigger with no previous run only when a job is
    added without a run time, which ``Timers.at`` never does, or resumed after a pause of that job
    alone, which statecore never does: it is then over, as a one-shot whose time has passed.)"""

    __slots__ = ()

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        return None

    def __str__(self) -> str:
        return "one-shot"


_ONE_SHOT = _OneShot()


class IndexedJobStore(MemoryJobStore):  # type: ignore[misc]  # no type information either
    """APScheduler's memory job store, on a heap instead of a sorted list.

    The stock store keeps every job in one list sorted by (run time, id): arming or running a job
    is a Python binary search plus a list insert or delete, which moves every job behind it. With
    100,000 services (a timeout and an outcome job each while they start) that memmove dominated
    the whole start-up. Here a heap holds (run time, kind rank, id, sequence) entries; the index
    says which entry of an id is current, stale entries are dropped when they surface, and the heap
    is rebuilt when they outnumber the live ones. Jobs come out in (run time, ``SAME_INSTANT_ORDER``,
    id) order, a paused job (no run time) last; every method keeps the stock meaning.
    """

    def __init__(self) -> None:
        super().__init__()
        self._jobs_index: dict[str, Job] = {}  # the stock store holds (job, timestamp) tuples here
        self._current: dict[str, int] = {}
        """Per job id, the sequence number of its current heap entry. Apart from the index, so no
        tuple per armed job outlives its arming: with 10,000 services, the jobs each keeps armed
        are objects the collector walks on every full collection."""
        self._heap: list[tuple[float, int, str, int]] = []
        self._sequence = itertools.count()

    def lookup_job(self, job_id: str) -> Job | None:
        return self._jobs_index.get(job_id)

    def get_due_jobs(self, now: datetime) -> list[Job]:
        limit, heap, due = now.timestamp(), self._heap, []
        while heap and heap[0][0] <= limit:
            entry = heapq.heappop(heap)
            if self._current.get(entry[2]) == entry[3]:
                due.append(entry)
        for entry in due:  # still scheduled: the scheduler removes or moves them after running them
            heapq.heappush(heap, entry)
        return [self._jobs_index[job_id] for _, _, job_id, _ in due]

    def get_next_run_time(self) -> datetime | None:
        job = self.first()
        return None if job is None else job.next_run_time

    def first(self) -> Job | None:
        """The job that runs next: earliest, then first in ``SAME_INSTANT_ORDER``, then by id."""
        heap, current = self._heap, self._current
        while heap and current.get(heap[0][2]) != heap[0][3]:
            heapq.heappop(heap)
        return self._jobs_index[heap[0][2]] if heap else None

    def get_all_jobs(self) -> list[Job]:
        entries = sorted((_when(job), _rank(job.id), job.id, job) for job in self._jobs_index.values())
        return [job for *_, job in entries]

    def add_job(self, job: Job) -> None:
        if job.id in self._jobs_index:
            raise ConflictingIdError(job.id)
        self._put(job)

    def put(self, job: Job) -> None:
        """Add ``job``, or replace the one of its id: ``Timers.at``'s one call for either."""
        self._put(job)

    def update_job(self, job: Job) -> None:
        if job.id not in self._jobs_index:
            raise JobLookupError(job.id)
        self._put(job)

    def remove_job(self, job_id: str) -> None:
        if not self.discard(job_id):
            raise JobLookupError(job_id)

    def discard(self, job_id: str) -> bool:
        """Remove the job if it is armed (``Timers.cancel``'s one call); False if it was not."""
        if self._jobs_index.pop(job_id, None) is None:
            return False
        del self._current[job_id]
        if len(self._heap) > 2 * len(self._jobs_index) + 64:
            self._compact()
        return True

    def remove_all_jobs(self) -> None:
        self._jobs_index, self._current, self._heap = {}, {}, []

    def _put(self, job: Job) -> None:
        """Every job armed comes here: ``_when`` and ``_rank`` are written out, two calls fewer."""
        job_id, when = job.id, job.next_run_time
        sequence = next(self._sequence)
        self._jobs_index[job_id] = job
        self._current[job_id] = sequence
        rank = _RANK.get(job_id.partition("|")[0], _UNRANKED)
        heapq.heappush(self._heap, (math.inf if when is None else when.timestamp(), rank, job_id, sequence))
        if len(self._heap) > 2 * len(self._jobs_index) + 64:
            self._compact()

    def _compact(self) -> None:
        """Stale entries outnumber the live ones: rebuild the heap from the index."""
        current = self._current
        self._heap = [(_when(job), _rank(job_id), job_id, current[job_id]) for job_id, job in self._jobs_index.items()]
        heapq.heapify(self._heap)


def _when(job: Job) -> float:
    """A job's place in time; a paused job (no run time) goes last."""
    when = job.next_run_time
    return math.inf if when is None else when.timestamp()


class VirtualScheduler(BaseScheduler):  # type: ignore[misc]  # likewise
    """An APScheduler whose time is a ``VirtualClock``; jobs run on the caller's thread."""

    def __init__(self, clock: VirtualClock, **options: Any) -> None:
        super().__init__(timezone=UTC, job_defaults=JOB_DEFAULTS, **options)
        self.clock = clock

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait=False)

    def wakeup(self) -> None:
        """Nothing sleeps: jobs run only inside ``advance_to``."""

    def _create_default_executor(self) -> DebugExecutor:
        return DebugExecutor()

    def _create_default_jobstore(self) -> MemoryJobStore:
        return IndexedJobStore()

    def advance_to(self, target: datetime) -> int:
        """Run every job due up to ``target``, one at a time in the store's order (instant, then
        ``SAME_INSTANT_ORDER``), reading the queue again after each; returns how many ran."""
        ran = 0
        store: IndexedJobStore = self._lookup_jobstore("default")
        while True:
            with self._jobstores_lock:
                job = store.first()
                instant = None if job is None else job.next_run_time
                if job is None or instant is None or instant > target:
                    break
                self.clock.set(instant)
                following = job.trigger.get_next_fire_time(instant, instant)
                if following is None:
                    store.remove_job(job.id)
                else:
                    job._modify(next_run_time=following)
                    store.update_job(job)
            job.func(*job.args, **job.kwargs)
            ran += 1
        self.clock.set(max(target, self.clock.now()))
        return ran


def background_scheduler() -> BackgroundScheduler:
    """Real time: APScheduler's own thread, on the indexed job store."""
    return BackgroundScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS, jobstores={"default": IndexedJobStore()})


class Timers:
    """The engine's view of a scheduler: arm a one-shot or periodic job by id, or cancel it."""

    def __init__(self, clock: Clock, scheduler: BaseScheduler | None = None) -> None:
        """``scheduler``: the engine's runtime (runtime.py) passes its own; by default one that fits
        the clock, for code that uses timers on their own."""
        self.clock = clock
        if scheduler is None:
            scheduler = VirtualScheduler(clock) if isinstance(clock, VirtualClock) else background_scheduler()
        self.scheduler: BaseScheduler = scheduler
        self._store: MemoryJobStore = MemoryJobStore()  # the scheduler's own, once started
        self._put: Callable[[Job], None] | None = None
        """The indexed store's ``put`` once started (add or replace in one call), if it is one."""
        self._wakes = not isinstance(scheduler, VirtualScheduler)
        """A virtual scheduler never sleeps: nothing to wake when a job is armed."""
        self.shutdown_wait = SHUTDOWN_WAIT

    def start(self) -> None:
        if self.scheduler.state == STATE_STOPPED:
            self.scheduler.start()
            self._store = self.scheduler._lookup_jobstore("default")
            self._put = self._store.put if isinstance(self._store, IndexedJobStore) else None

    def shutdown(self) -> None:
        """Pause first, under the job-store lock: APScheduler's thread runs one more job pass after
        ``shutdown`` wakes it, and a one-shot job it then tries to remove raises JobLookupError.
        Then wait, up to ``shutdown_wait`` seconds, for the jobs already running: one that commits late must
        be over before the engine's last delivery, or its notification would wait in the outbox for
        a next start. APScheduler's own ``shutdown(wait=True)`` would wait without a bound, on a job
        stuck in a hung store; one still running after ``shutdown_wait`` is left to end on its own."""
        scheduler = self.scheduler
        if scheduler.state == STATE_STOPPED:
            return
        with scheduler._jobstores_lock:
            scheduler.pause()
        scheduler.shutdown(wait=False)
        deadline = time.monotonic() + self.shutdown_wait
        while self.running() and time.monotonic() < deadline:
            time.sleep(SHUTDOWN_POLL)

    def running(self) -> int:
        """Jobs running now, as APScheduler's executors count them (a job leaves the count once its
        function has returned)."""
        return sum(sum(getattr(executor, "_instances", {}).values()) for executor in self.scheduler._executors.values())

    def at(self, job_id: str, when: datetime, func: Callable[..., None], *args: Any) -> None:
        """Arm (or re-arm) a one-shot job.

        The engine's hot path (every attempt, retry, timeout and ``up`` entry), so once the scheduler
        runs it puts a ready-made job straight into the memory job store: ``add_job`` inspects the
        function's signature, and ``_real_add_job`` normalizes defaults, raises and catches
        ``ConflictingIdError`` to replace, builds a ``JobEvent`` nobody listens to and logs, which
        together cost several times the store insertion itself.
        """
        scheduler = self.scheduler
        if scheduler.state == STATE_STOPPED:
            scheduler.add_job(func, DateTrigger(run_date=when), args=args, id=job_id, next_run_time=when,
                              replace_existing=True)  # fmt: skip
            return
        job = Job.__new__(Job)
        job._scheduler, job._jobstore_alias = scheduler, "default"
        job.id, job.name, job.func, job.func_ref, job.args, job.kwargs = job_id, job_id, func, None, args, _NO_KWARGS
        job.trigger, job.executor, job.next_run_time = _ONE_SHOT, "default", when
        # A one-shot may be re-armed while it runs (the watchdog re-arms itself before its commits);
        # with max_instances=1 APScheduler would skip, then delete, the new run. Tokens guard overlap.
        job.misfire_grace_time, job.coalesce, job.max_instances = None, True, ONE_SHOT_INSTANCES
        put = self._put
        with scheduler._jobstores_lock:
            if put is not None:
                put(job)
            elif self._store.lookup_job(job_id) is None:
                self._store.add_job(job)
            else:
                self._store.update_job(job)
        if self._wakes and scheduler.state == STATE_RUNNING:
            scheduler.wakeup()

    def every(self, job_id: str, seconds: float, first: datetime, func: Callable[..., None], *args: Any) -> None:
        trigger = IntervalTrigger(seconds=seconds, start_date=first, timezone=UTC)
        self.scheduler.add_job(func, trigger, args=args, id=job_id, next_run_time=first, replace_existing=True)

    def cancel(self, job_id: str) -> None:
        """Already fired or never armed is fine: a stale firing is dropped by its token anyway."""
        scheduler = self.scheduler
        if scheduler.state == STATE_STOPPED:
            with suppress(JobLookupError):
                scheduler.remove_job(job_id)
            return
        with scheduler._jobstores_lock:
            if self._put is not None:
                self._store.discard(job_id)
            elif self._store.lookup_job(job_id) is not None:
                self._store.remove_job(job_id)

    def due(self, job_id: str) -> datetime | None:
        job = self.scheduler.get_job(job_id)
        return None if job is None else job.next_run_time

    def jobs(self) -> list[tuple[str, datetime]]:
        return sorted((job.id, job.next_run_time) for job in self.scheduler.get_jobs())

    def advance(self, seconds: float) -> int:
        return self.advance_to(self.clock.now() + timedelta(seconds=seconds))

    def advance_to(self, target: datetime) -> int:
        if not isinstance(self.scheduler, VirtualScheduler):
            raise RuntimeError("advance() needs an engine on a VirtualClock; real time advances by itself")
        return self.scheduler.advance_to(target)
