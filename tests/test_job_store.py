"""The timers' job store and the expiry deadlines: same order as APScheduler's, fewer job runs."""

from __future__ import annotations

import random
from datetime import timedelta

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore

from statecore.clock import DEFAULT_VIRTUAL_START, VirtualClock
from statecore.deadlines import Deadlines
from statecore.timers import IndexedJobStore, Timers


def _job(number: int, seconds: float | None) -> Job:
    job = Job.__new__(Job)
    job.id = f"job{number}"
    job.next_run_time = None if seconds is None else DEFAULT_VIRTUAL_START + timedelta(seconds=seconds)
    return job


def _apply(store: MemoryJobStore, operation: str, number: int, seconds: float | None, now: float) -> object:
    try:
        if operation == "add":
            return store.add_job(_job(number, seconds))
        if operation == "update":
            return store.update_job(_job(number, seconds))
        if operation == "remove":
            return store.remove_job(f"job{number}")
        if operation == "due":
            return [job.id for job in store.get_due_jobs(DEFAULT_VIRTUAL_START + timedelta(seconds=now))]
        return store.get_next_run_time()
    except (ConflictingIdError, JobLookupError) as error:
        return type(error)


def test_indexed_store_answers_every_call_as_apschedulers_memory_store():
    draw = random.Random(7)
    for _ in range(100):
        stock, indexed = MemoryJobStore(), IndexedJobStore()
        for _ in range(200):
            operation = draw.choice(["add", "add", "update", "remove", "due", "next"])
            number, now = draw.randrange(30), draw.randrange(40)
            seconds = None if draw.random() < 0.05 else draw.randrange(40) + draw.choice([0, 1e-6, 0.5])
            assert _apply(stock, operation, number, seconds, now) == _apply(indexed, operation, number, seconds, now)
            assert [j.id for j in stock.get_all_jobs()] == [j.id for j in indexed.get_all_jobs()]


def _deadlines(resolution: timedelta) -> tuple[Timers, list[float]]:
    clock = VirtualClock()
    timers = Timers(clock)
    timers.start()
    runs: list[float] = []

    def expire() -> None:
        runs.append(clock.elapsed())
        deadlines.pop_due(clock.now())

    deadlines = Deadlines(timers, "watchdog", expire, resolution)
    for key, seconds in (("a", 1.0), ("b", 1.01), ("c", 1.02), ("d", 2.0)):
        deadlines.arm(key, clock.after(seconds))
    return timers, runs


def test_deadlines_fire_at_their_exact_instants_without_a_resolution():
    timers, runs = _deadlines(timedelta(0))
    timers.advance(3)
    assert runs == [1.0, 1.01, 1.02, 2.0]


def test_close_deadlines_share_one_run_of_the_job_with_a_resolution():
    timers, runs = _deadlines(timedelta(milliseconds=50))
    timers.advance(3)
    assert runs == [1.0, 1.05, 2.0]
