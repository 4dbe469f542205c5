"""Timers: in real time, how late a one-shot job fires after its due instant.

1,000 timers spread over a few seconds, armed through the engine's ``Timers.at`` on a
``BackgroundScheduler`` (the way a backoff retry is armed), against APScheduler's own
``add_job(DateTrigger)`` in the same process. Lateness is the fire instant minus the due instant.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from bench.common import Section, Sizes, interleave
from statecore.clock import RealClock
from statecore.timers import Timers

LEAD = 0.3  # seconds between arming and the first due instant


class Lateness:
    """Collects each firing's lateness in milliseconds, and says when all have fired."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.late: list[float] = []
        self.done = threading.Event()

    def fired(self, due: datetime) -> None:
        self.late.append((datetime.now(UTC) - due).total_seconds() * 1000)
        if len(self.late) == self.count:
            self.done.set()

    def result(self, timeout: float) -> tuple[float, float]:
        if not self.done.wait(timeout):
            raise RuntimeError(f"only {len(self.late)} of {self.count} timers fired")
        ordered = sorted(self.late)
        return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def due_instants(count: int, spread: float) -> list[datetime]:
    start = datetime.now(UTC) + timedelta(seconds=LEAD)
    return [start + timedelta(seconds=spread * index / count) for index in range(count)]


def through_engine_timers(count: int, spread: float) -> tuple[float, float]:
    timers = Timers(RealClock())
    timers.start()
    lateness = Lateness(count)
    try:
        for index, due in enumerate(due_instants(count, spread)):
            timers.at(f"retry|volume/node{index}@lvm", due, lateness.fired, due)
        return lateness.result(spread + LEAD + 10)
    finally:
        timers.shutdown()


def bare_apscheduler(count: int, spread: float) -> tuple[float, float]:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    lateness = Lateness(count)
    try:
        for index, due in enumerate(due_instants(count, spread)):
            scheduler.add_job(lateness.fired, DateTrigger(run_date=due), args=(due,), id=f"job{index}")
        return lateness.result(spread + LEAD + 10)
    finally:
        scheduler.shutdown(wait=False)


def run(sizes: Sizes) -> Section:
    section = Section("Timers")
    results: dict[str, list[tuple[float, float]]] = {"engine": [], "bare": []}

    def measure(kind: str, how: Callable[[int, float], tuple[float, float]]) -> Callable[[], float]:
        def once() -> float:
            results[kind].append(how(sizes.timers, sizes.timer_spread))
            time.sleep(0.2)  # let the scheduler threads wind down between runs
            return results[kind][-1][0]

        return once

    interleave(sizes.heavy_runs, measure("engine", through_engine_timers), measure("bare", bare_apscheduler))
    figures = {}
    for kind, label in (("engine", "Timers.at on a BackgroundScheduler"), ("bare", "bare BackgroundScheduler.add_job")):
        medians = [median for median, _ in results[kind]]
        p99s = [p99 for _, p99 in results[kind]]
        figures[kind] = (
            section.add(f"lateness median, {label}", medians, "ms"),
            section.add(f"lateness p99, {label}", p99s, "ms"),
        )
    for engine_figure, bare_figure in zip(figures["engine"], figures["bare"], strict=True):
        section.compare(engine_figure, bare_figure)
    section.notes.append(
        f"{sizes.timers:,} one-shot timers a run, due over {sizes.timer_spread:g} s, all armed {LEAD:g} s ahead; "
        "each figure is the median over runs of that run's median or 99th percentile. Target: p99 under 20 ms."
    )
    return section
