"""A clean stop waits, bounded, for running jobs and hands what they committed to the sinks."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from statecore import Engine, Settings
from statecore.store import Entry
from statecore.store.sql import SqlStore
from statecore.testing import ScriptedDriver


class Bus:
    """A healthy sink with a stable name (the outbox's key)."""

    name = "bus"

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []

    def emit(self, envelope: dict[str, Any]) -> None:
        self.envelopes.append(envelope)


class WatchedStore(SqlStore):
    """A real SQLite store that lets the test see a commit begin and end."""

    def __init__(self, url: str, busy_timeout: float = 2.0) -> None:
        super().__init__(url, busy_timeout=busy_timeout)
        self.entered, self.left, self.acknowledged = threading.Event(), threading.Event(), threading.Event()

    def acknowledge(self, sink: str, message_ids: Sequence[str]) -> None:
        super().acknowledge(sink, message_ids)
        self.acknowledged.set()

    def commit_many(self, entries: Sequence[Entry], sinks: Sequence[str]) -> None:
        self.entered.set()
        try:
            super().commit_many(entries, sinks)
        finally:
            self.left.set()


def write_locked(path: Path) -> sqlite3.Connection:
    """Another process's writer, as far as SQLite can tell: it holds the write lock until COMMIT."""
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")
    return locker


def test_a_clean_stop_with_a_job_committing_late_leaves_an_empty_outbox(tmp_path):
    path = tmp_path / "state.sqlite"
    store, bus, driver = WatchedStore(f"sqlite:///{path}"), Bus(), ScriptedDriver(["hang"])
    engine = Engine(Settings(), store=store, sinks=[bus])
    engine.add_service("node1@lvm", "volume", driver)
    engine.start()
    assert store.acknowledged.wait(5)  # init.start delivered; the attempt is in flight, its driver hangs
    store.entered.clear(), store.left.clear()
    locker = write_locked(path)
    driver.release()  # the outcome job commits, and waits for the lock
    assert store.entered.wait(5)
    threading.Timer(0.3, locker.execute, ["COMMIT"]).start()
    began = time.monotonic()
    engine.shutdown()
    took = time.monotonic() - began
    assert store.left.wait(5)
    assert store.pending("bus") == []
    assert [e["event_type"] for e in bus.envelopes] == ["volume.init.start", "volume.init.success"]
    assert 0.2 <= took < 3


def test_a_job_stuck_in_a_hung_store_does_not_hold_a_clean_stop_past_its_bound(tmp_path):
    path = tmp_path / "state.sqlite"
    store, driver = WatchedStore(f"sqlite:///{path}", busy_timeout=30), ScriptedDriver(["hang"])
    engine = Engine(Settings(), store=store, sinks=[Bus()])
    engine.add_service("node1@lvm", "volume", driver)
    engine.start()
    assert store.acknowledged.wait(5)
    store.entered.clear(), store.left.clear()
    locker = write_locked(path)
    driver.release()
    assert store.entered.wait(5)
    engine.timers.shutdown_wait = 0.3
    began = time.monotonic()
    engine.shutdown()
    assert time.monotonic() - began < 1.5  # the job still waits for the lock (30 s); the stop did not
    assert not store.left.is_set()
    locker.execute("COMMIT")
    assert store.left.wait(5)
