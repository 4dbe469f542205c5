"""Fleet: how long 10,000 and 50,000 services take to start, how much memory 100,000 hold, how
fast an hour of their life simulates, and what a live fleet costs in CPU.

Half the services are volumes and half backups, each with ``ScriptedDriver(["ok"])``, a memory
store, and a sink that only counts (a fleet's notifications would otherwise be the memory).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Collection, Mapping
from datetime import datetime
from functools import partial

from bench.common import CountingSink, Section, Sizes, fleet_engine, repeat
from statecore import Engine, Settings
from statecore.store import MemoryStore

REPORT_INTERVAL = 10


class CountingStore(MemoryStore):
    """The memory store, counting the heartbeats it records (the simulated events of a quiet hour)."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded = 0

    def record_heartbeats(self, leases: Mapping[str, int], at: datetime) -> Collection[str]:
        self.recorded += len(leases)
        return super().record_heartbeats(leases, at)


def started(count: int, store: MemoryStore | None = None) -> Engine:
    """Register ``count`` services and start them; in virtual time every one is up afterwards."""
    engine = fleet_engine(count, settings=Settings(report_interval=REPORT_INTERVAL), store=store)
    engine.start()
    engine.advance(0)
    return engine


def _sink(engine: Engine) -> CountingSink:
    sink = engine.notifier.sinks[0]
    assert isinstance(sink, CountingSink)
    return sink


def start_seconds(count: int) -> float:
    begin = time.perf_counter()
    engine = started(count)
    seconds = time.perf_counter() - begin
    assert _sink(engine).count == 2 * count, "every service should be up (init.start, init.success)"
    del engine
    gc.collect()
    return seconds


def bytes_per_service(count: int) -> float:
    """Traced memory (after ``gc.collect()``) of the whole engine, its services, drivers and jobs."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        engine = started(count)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del engine
    gc.collect()
    return held / count


def simulated_rate(count: int, seconds: float) -> tuple[float, float]:
    """(simulated events per second of wall time, wall seconds) for ``seconds`` of virtual time.

    Events are heartbeats recorded, transitions, and APScheduler job firings.
    """
    store = CountingStore()
    engine = started(count, store)
    transitions_before = _sink(engine).count
    begin = time.perf_counter()
    jobs = engine.timers.advance(seconds)  # the job firings, not the transitions advance() returns
    wall = time.perf_counter() - begin
    events = store.recorded + _sink(engine).count - transitions_before + jobs
    del engine
    gc.collect()
    return events / wall, wall


def run(sizes: Sizes) -> Section:
    section = Section("Fleet")
    for count in sizes.fleet:
        samples = repeat(sizes.heavy_runs, partial(start_seconds, count))
        section.add(f"register and start {count:,} services", samples, "s")
    for count in sizes.fleet_memory:  # one run: tracemalloc counts the same bytes every time, slowly
        samples = [bytes_per_service(count)]
        figure = section.add(f"memory per service, {count:,} services", samples, "bytes")
        total = figure.value * count / 2**30
        section.notes.append(f"{count:,} services hold {total:.3f} GiB with their jobs (tracemalloc).")
    rates, walls = zip(
        *(simulated_rate(sizes.sim_services, sizes.sim_seconds) for _ in range(sizes.heavy_runs)), strict=True
    )
    hour = f"{sizes.sim_seconds:g} s" if sizes.sim_seconds != 3600 else "one hour"
    section.add(f"simulate {hour} of {sizes.sim_services:,} services (wall time)", list(walls), "s")
    section.add(f"simulated events/s, {sizes.sim_services:,} services", list(rates), "events/s",
                note="heartbeats + transitions + job firings")  # fmt: skip
    section.notes.append(
        "Targets: 100,000 services in under 0.5 GiB with their jobs; one simulated hour of 10,000 services "
        "in under 30 s. Real time is measured on `statecore run` itself (the section of that name)."
    )
    return section
