"""What every benchmark shares: repeated runs, medians, ratios, and the rows they report."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from statecore import Engine, Settings
from statecore.store import MemoryStore
from statecore.testing import ScriptedDriver


@dataclass(frozen=True)
class Sizes:
    """How big and how often: ``--quick`` only proves the code paths still run."""

    quick: bool
    runs: int  # runs of a cheap measurement (each figure is their median)
    heavy_runs: int  # runs of an expensive one (never fewer than 3)
    dispatch_events: int
    fleet: tuple[int, ...]
    """Fleets timed from registration to every service up (no target: a note). 100,000 took 9 s a
    run, a tenth of a full bench run in three; 50,000 shows the growth past 10,000 in 4 s."""
    fleet_memory: tuple[int, ...]
    sim_services: int
    sim_seconds: float
    realtime_services: int
    realtime_window: float
    store_events: int
    heartbeat_ids: int
    timers: int
    timer_spread: float
    sim_compare: tuple[tuple[int, float], ...]
    """(services, simulated seconds) where the simulator is compared with the plain one."""
    sim_linear: tuple[int, int, float]
    """(small fleet, large fleet, simulated seconds) for CPU per service-day."""
    retention_services: int
    retention_weeks: int
    """Fleet and simulated weeks of the retention replay (its rows grow with both)."""


FULL = Sizes(
    quick=False, runs=5, heavy_runs=3, dispatch_events=20_000, fleet=(10_000, 50_000),
    fleet_memory=(100_000,), sim_services=10_000, sim_seconds=3600, realtime_services=10_000,
    realtime_window=20.0, store_events=1_000, heartbeat_ids=10_000, timers=1_000,
    timer_spread=2.0, sim_compare=((1_000, 21_600), (10_000, 7_200)), sim_linear=(100, 10_000, 7_200),
    retention_services=100, retention_weeks=2,
)  # fmt: skip
QUICK = Sizes(
    quick=True, runs=3, heavy_runs=3, dispatch_events=1_000, fleet=(100, 500), fleet_memory=(100, 500),
    sim_services=100, sim_seconds=300, realtime_services=100, realtime_window=1.5, store_events=30,
    heartbeat_ids=200, timers=50, timer_spread=0.2, sim_compare=((100, 3_600),), sim_linear=(100, 200, 3_600),
    retention_services=20, retention_weeks=2,
)  # fmt: skip


@dataclass(frozen=True)
class Figure:
    """One row of a result table: a median, and its ratio to the baseline measured alongside it."""

    section: str
    name: str
    value: float
    unit: str
    runs: int
    baseline: str | None = None
    ratio: float | None = None
    note: str = ""
    samples: tuple[float, ...] = ()
    """Each run's value, in the order run: the ratio pairs them with the baseline's, turn by turn."""


@dataclass
class Section:
    """A benchmark's figures plus the prose the document shows under its table."""

    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    """Versions and the like that a benchmark learns while running (the PostgreSQL server's)."""

    def add(self, name: str, samples: list[float], unit: str, note: str = "") -> Figure:
        figure = Figure(self.title, name, statistics.median(samples), unit, len(samples), note=note,
                        samples=tuple(samples))  # fmt: skip
        self.figures.append(figure)
        return figure

    def compare(self, figure: Figure, baseline: Figure) -> None:
        """Replace ``figure`` by itself with a ratio to ``baseline`` (same process, same run).

        The ratio is the median of the turns' ratios: each turn measured both back to back, so a
        moment when the machine was busy slows both of that turn, where the ratio of two medians
        could pair a quiet run of one with a busy run of the other.
        """
        index = self.figures.index(figure)
        pairs = list(zip(figure.samples, baseline.samples, strict=False))
        if pairs and len(figure.samples) == len(baseline.samples) and all(b for _, b in pairs):
            ratio: float | None = statistics.median(f / b for f, b in pairs)
        else:
            ratio = figure.value / baseline.value if baseline.value else None
        self.figures[index] = Figure(**{**figure.__dict__, "baseline": baseline.name, "ratio": ratio})


def repeat(runs: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(runs)]


def interleave(runs: int, *measures: Callable[[], float]) -> list[list[float]]:
    """Run the measurements in turns (A B A B ...), so a noisy neighbour hurts all of them alike.

    The collector runs before each turn: the garbage one measurement leaves (a run's engine, which
    holds reference cycles) is collected there, not inside the next measurement's timing."""
    samples: list[list[float]] = [[] for _ in measures]
    for _ in range(runs):
        for index, measure in enumerate(measures):
            gc.collect()
            samples[index].append(measure())
    return samples


def rate(count: int, action: Callable[[], Any]) -> float:
    """``count`` things done by ``action``, per second of wall-clock time.

    The collector runs first, so garbage left by setting up (a previous run's engine, which holds
    reference cycles) is not collected, and charged, inside the timed loop; it stays enabled while
    timing, so what the measured code itself allocates is paid for.
    """
    gc.collect()
    start = time.perf_counter()
    action()
    return count / (time.perf_counter() - start)


class CountingSink:
    """A sink that only counts: a fleet's notifications would otherwise dominate its memory."""

    name = "counting"

    def __init__(self) -> None:
        self.count = 0

    def emit(self, envelope: Any) -> None:
        self.count += 1


def host(index: int, binary: str) -> str:
    return f"node{index}@lvm" if binary == "volume" else f"node{index}"


def fleet_engine(count: int, *, settings: Settings | None = None, store: Any = None, real_time: bool = False) -> Engine:
    """``count`` services, half volume and half backup, each a driver that initializes at once."""
    options: dict[str, Any] = {
        "settings": settings or Settings(),
        "sinks": [CountingSink()],
        "store": store if store is not None else MemoryStore(),
    }
    engine = Engine(**options) if real_time else Engine.virtual_time(**options)
    for index in range(count):
        binary = "volume" if index % 2 == 0 else "backup"
        engine.add_service(host(index, binary), binary, ScriptedDriver(["ok"]))
    return engine
