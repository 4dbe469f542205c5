"""Retention: the size of a SQLite store after simulated weeks of a flapping fleet, with the
engine's hourly purge and without it.

One simulated hour of the real engine gives the transitions: a fleet (half volume, half backup
services) of which 10 % flap, their driver's ``is_working`` failing at every second
capabilities check, so each is lost and re-initialized every two minutes. That hour's commits
are then written into a SQLite file hour after hour, shifted in time, the way the engine writes
them (``commit_many``, one transaction per simulated five minutes; delivered notifications leave
no outbox rows), and at the end of every hour the history older than ``history_retention`` is
purged as the engine's retention job does it (``SqlStore.purge``). The same weeks without
purging are the baseline. Heartbeats add no rows, so they are left out of the replay.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Section, Sizes, host
from statecore import Engine, Settings
from statecore.store import Entry, MemoryStore
from statecore.store.sql import SqlStore, default_url
from statecore.table import Binary
from statecore.testing import ScriptedDriver

HOUR = timedelta(hours=1)
FLAPPING = 0.1
COMMIT_EVERY = timedelta(minutes=5)
RETENTION = Settings().history_retention
"""The default, 7 days: the weeks after the first show whether the store stops growing."""


class Flapping(ScriptedDriver):
    """Initializes at once, then says it is not working at every second check."""

    def __init__(self) -> None:
        super().__init__(["ok"])
        self.checks = 0

    def is_working(self) -> bool:
        self.checks += 1
        return self.checks % 2 == 1


class Recording(MemoryStore):
    """Keeps every commit, with a copy of the state it wrote, for the replay."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[Entry] = []

    def commit(self, *args: Any, **options: Any) -> None:
        """``Store.commit``'s arguments, passed on as they came."""
        state, record, envelope = args[:3]
        self.entries.append(Entry(dataclasses.replace(state), record, envelope, options.get("status", False)))
        super().commit(*args, **options)


def one_hour(services: int) -> tuple[list[Entry], datetime]:
    """The commits of the fleet's second simulated hour (flapping only), and its start."""
    store = Recording()
    engine = Engine.virtual_time(settings=Settings(history_retention=0), sinks=[], store=store)
    flappers = int(services * FLAPPING)
    for index in range(services):
        binary: Binary = "volume" if index % 2 == 0 else "backup"
        engine.add_service(host(index, binary), binary, Flapping() if index < flappers else ScriptedDriver(["ok"]))
    engine.start()
    engine.advance(HOUR.total_seconds())  # the fleet starting, once, is not part of every hour
    store.entries.clear()
    start = engine.now()
    engine.advance(HOUR.total_seconds())
    engine.shutdown()
    return store.entries, start


def replay(path: Path, hour: list[Entry], start: datetime, hours: int, retention: float) -> dict[str, Any]:
    """``hours`` copies of ``hour``, purged hourly when ``retention`` > 0; sizes after each week."""
    store = SqlStore(default_url(path))
    sizes, purges = [], []
    for index in range(hours):
        shift = index * HOUR
        batch: list[Entry] = []
        window = start + shift + COMMIT_EVERY
        for state, record, envelope, status in hour:
            moved = record._replace(at=record.at + shift)
            if moved.at >= window and batch:
                store.commit_many(batch, ())
                batch, window = [], window + COMMIT_EVERY
            batch.append(Entry(state, moved, envelope, status))
        if batch:
            store.commit_many(batch, ())
        if retention:
            began = time.perf_counter()
            if store.purge(start + shift + HOUR - timedelta(seconds=retention)):
                purges.append(time.perf_counter() - began)  # the first week's purges find nothing yet
        if (index + 1) % (7 * 24) == 0:
            sizes.append(_size_mib(store, path))
    rows = len(store.history())
    store.close()
    return {"sizes": sizes, "rows": rows, "purge_ms": 1000 * statistics.median(purges) if purges else 0.0}


def _size_mib(store: SqlStore, path: Path) -> float:
    """The file once the WAL is folded in: what the store takes on disk."""
    store.engine.dispose()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size / 2**20


def run(sizes: Sizes) -> Section:
    """Figures of one run each: a replay is deterministic, and its sizes do not vary between runs."""
    section = Section("Retention")
    services, weeks = sizes.retention_services, sizes.retention_weeks
    hour, start = one_hour(services)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        kept = replay(Path(directory) / "kept.sqlite", hour, start, weeks * 7 * 24, RETENTION)
        forever = replay(Path(directory) / "forever.sqlite", hour, start, weeks * 7 * 24, 0)
    elapsed = time.perf_counter() - began
    for week, (with_purge, without) in enumerate(zip(kept["sizes"], forever["sizes"], strict=True), start=1):
        after = f"SQLite file after {week} simulated week{'s' if week > 1 else ''}"
        figure = section.add(f"{after}, history_retention 7 days", [with_purge], "MiB")
        baseline = section.add(f"{after}, nothing purged", [without], "MiB")
        section.compare(figure, baseline)
    section.add("history rows at the end, history_retention 7 days", [kept["rows"]], "rows")
    section.add("history rows at the end, nothing purged", [forever["rows"]], "rows")
    section.add("one hourly purge (an hour of rows deleted), median", [kept["purge_ms"]], "ms")
    section.notes.append(
        f"{services:,} services, {int(services * FLAPPING):,} of them flapping: {len(hour):,} history rows an "
        f"hour, replayed for {weeks} simulated weeks (both replays took {elapsed:.0f} s). SQLite does not give "
        "freed pages back to the file system; it reuses them, so with retention the file stops growing at about "
        "`history_retention` plus an hour of rows. The rows, and so the size, grow in proportion to the "
        "flapping services."
    )
    return section
