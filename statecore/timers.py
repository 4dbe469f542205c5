"""Timed moves as APScheduler 3 jobs, in real time or in virtual time.

Real time uses a ``BackgroundScheduler``. Virtual time uses ``VirtualScheduler``:
the same jobs in the same memory job store, fired at their exact instants, in
(instant, job id) order, when the owner advances the clock. It does the store
bookkeeping *before* running a job, so a job that re-arms itself under its own
id keeps the new schedule (APScheduler's inline executor gets this wrong).

Every job is added with an explicit ``next_run_time``: APScheduler would
otherwise read the system clock, which is meaningless in virtual time.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
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

JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
ONE_SHOT_INSTANCES = 64


class _OneShot(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type information
    """A DateTrigger without the date parsing: the engine always passes an aware UTC datetime."""

    __slots__ = ("run_date",)

    def __init__(self, run_date: datetime) -> None:
        self.run_date = run_date

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        return self.run_date if previous_fire_time is None else None


class IndexedJobStore(MemoryJobStore):  # type: ignore[misc]  # no type information either
    """APScheduler's memory job store, on a heap instead of a sorted list.

    The stock store keeps every job in one list sorted by (run time, id): arming or running a job
    is a Python binary search plus a list insert or delete, which moves every job behind it. With
    100,000 services (a timeout and an outcome job each while they start) that memmove dominated
    the whole start-up. Here a heap holds (run time, id, sequence) entries; the index says which
    entry of an id is current, stale entries are dropped when they surface, and the heap is rebuilt
    when they outnumber the live ones. Jobs come out in the stock store's (run time, id) order, a
    paused job (no run time) last; every method keeps the stock meaning.
    """

    def __init__(self) -> None:
        super().__init__()
        self._jobs_index: dict[str, tuple[Job, float | None, int]] = {}
        self._heap: list[tuple[float, str, int]] = []
        self._sequence = itertools.count()

    def get_due_jobs(self, now: datetime) -> list[Job]:
        limit, heap, due = now.timestamp(), self._heap, []
        while heap and heap[0][0] <= limit:
            entry = heapq.heappop(heap)
            if self._is_current(entry):
                due.append(entry)
        for entry in due:  # still scheduled: the scheduler removes or moves them after running them
            heapq.heappush(heap, entry)
        return [self._jobs_index[job_id][0] for _, job_id, _ in due]

    def get_next_run_time(self) -> datetime | None:
        heap = self._heap
        while heap and not self._is_current(heap[0]):
            heapq.heappop(heap)
        return self._jobs_index[heap[0][1]][0].next_run_time if heap else None

    def get_all_jobs(self) -> list[Job]:
        return [job for _, _, job in sorted((_key(ts), job.id, job) for job, ts, _ in self._jobs_index.values())]

    def add_job(self, job: Job) -> None:
        if job.id in self._jobs_index:
            raise ConflictingIdError(job.id)
        self._put(job)

    def update_job(self, job: Job) -> None:
        if job.id not in self._jobs_index:
            raise JobLookupError(job.id)
        self._put(job)

    def remove_job(self, job_id: str) -> None:
        if self._jobs_index.pop(job_id, None) is None:
            raise JobLookupError(job_id)
        self._compact_if_stale()

    def remove_all_jobs(self) -> None:
        self._jobs_index, self._heap = {}, []

    def _put(self, job: Job) -> None:
        timestamp = None if job.next_run_time is None else job.next_run_time.timestamp()
        sequence = next(self._sequence)
        self._jobs_index[job.id] = (job, timestamp, sequence)
        heapq.heappush(self._heap, (_key(timestamp), job.id, sequence))
        self._compact_if_stale()

    def _is_current(self, entry: tuple[float, str, int]) -> bool:
        current = self._jobs_index.get(entry[1])
        return current is not None and current[2] == entry[2]

    def _compact_if_stale(self) -> None:
        if len(self._heap) > 2 * len(self._jobs_index) + 64:
            self._heap = [(_key(ts), job_id, seq) for job_id, (_, ts, seq) in self._jobs_index.items()]
            heapq.heapify(self._heap)


def _key(timestamp: float | None) -> float:
    return math.inf if timestamp is None else timestamp


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
        """Run every job due up to ``target``, instant by instant; returns how many ran."""
        ran = 0
        store = self._lookup_jobstore("default")
        while True:
            with self._jobstores_lock:
                instant = store.get_next_run_time()
                if instant is None or instant > target:
                    break
                self.clock.set(instant)
                due = store.get_due_jobs(instant)
            for job in due:
                ran += self._run_if_still_due(store, job.id, instant)
        self.clock.set(max(target, self.clock.now()))
        return ran

    def _run_if_still_due(self, store: MemoryJobStore, job_id: str, instant: datetime) -> int:
        with self._jobstores_lock:
            job = store.lookup_job(job_id)
            if job is None or job.next_run_time is None or job.next_run_time > instant:
                return 0  # removed or moved by a job that ran before it at this instant
            following = job.trigger.get_next_fire_time(job.next_run_time, instant)
            if following is None:
                store.remove_job(job_id)
            else:
                job._modify(next_run_time=following)
                store.update_job(job)
        job.func(*job.args, **job.kwargs)
        return 1


class Timers:
    """The engine's view of a scheduler: arm a one-shot or periodic job by id, or cancel it."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.virtual = isinstance(clock, VirtualClock)
        if isinstance(clock, VirtualClock):
            self.scheduler: BaseScheduler = VirtualScheduler(clock)
        else:
            self.scheduler = BackgroundScheduler(
                timezone=UTC, job_defaults=JOB_DEFAULTS, jobstores={"default": IndexedJobStore()}
            )
        self._store: MemoryJobStore = MemoryJobStore()  # the scheduler's own, once started

    def start(self) -> None:
        if self.scheduler.state == STATE_STOPPED:
            self.scheduler.start()
            self._store = self.scheduler._lookup_jobstore("default")

    def shutdown(self) -> None:
        """Pause first, under the job-store lock: APScheduler's thread runs one more job pass after
        ``shutdown`` wakes it, and a one-shot job it then tries to remove raises JobLookupError."""
        scheduler = self.scheduler
        if scheduler.state == STATE_STOPPED:
            return
        with scheduler._jobstores_lock:
            scheduler.pause()
        scheduler.shutdown(wait=False)

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
        job.id, job.name, job.func, job.func_ref, job.args, job.kwargs = job_id, job_id, func, None, args, {}
        job.trigger, job.executor, job.next_run_time = _OneShot(when), "default", when
        # A one-shot may be re-armed while it runs (the watchdog re-arms itself before its commits);
        # with max_instances=1 APScheduler would skip, then delete, the new run. Tokens guard overlap.
        job.misfire_grace_time, job.coalesce, job.max_instances = None, True, ONE_SHOT_INSTANCES
        store = self._store
        with scheduler._jobstores_lock:
            if store.lookup_job(job_id) is None:
                store.add_job(job)
            else:
                store.update_job(job)
        if scheduler.state == STATE_RUNNING:
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
            if self._store.lookup_job(job_id) is not None:
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
