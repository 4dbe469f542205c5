"""Crash recovery: a new engine on the same store carries on, with nothing lost and nothing run twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from support import Harness

from statecore import InitTimeout
from statecore.store.sql import SqlStore

CHILD = Path(__file__).with_name("crash_child.py")


class Bus:
    """A sink with a stable name, so a restarted engine finds its undelivered notifications."""

    name = "bus"

    def __init__(self, failing: bool) -> None:
        self.failing = failing
        self.envelopes: list[dict] = []

    def emit(self, envelope: dict) -> None:
        if self.failing:
            raise ConnectionError("bus down")
        self.envelopes.append(envelope)


def on_file(path: Path, start=None, sinks=(), **settings) -> Harness:
    return Harness(store=SqlStore(f"sqlite:///{path}"), start=start, sinks=sinks, **settings)


def steps(h: Harness) -> list[tuple]:
    return [(h.t(r.at), r.event.value, r.from_state.value, r.to_state.value, r.attempt) for r in h.engine.history()]


def test_a_new_engine_carries_on_a_retry_sequence_from_the_stored_state(tmp_path):
    reference = on_file(tmp_path / "ref.sqlite", reinit_driver_count=3)
    reference.add("node1@lvm", "volume", reference.driver("recoverable"))
    reference.engine.start()
    reference.engine.advance(20)

    first = on_file(tmp_path / "s.sqlite", reinit_driver_count=3)
    first.add("node1@lvm", "volume", first.driver("recoverable"))
    first.engine.start()
    first.engine.advance(2)  # attempts at 0 and 1 failed; retry 2 is due at t=3; then the process dies
    second = on_file(tmp_path / "s.sqlite", start=first.clock.now(), reinit_driver_count=3)
    driver = second.add("node1@lvm", "volume", second.driver("recoverable"))
    second.engine.start()
    second.engine.advance(18)

    assert steps(second) == steps(reference)
    assert driver.calls == 2  # attempts 3 and 4 only: nothing ran twice
    assert second.engine.service("node1@lvm").total_attempts == 4


def test_an_overdue_retry_fires_at_once_after_a_long_outage(tmp_path):
    first = on_file(tmp_path / "s.sqlite", reinit_driver_count=3, service_down_time=300)
    first.add("node1@lvm", "volume", first.driver("recoverable"))
    first.engine.start()
    first.engine.advance(0)
    later = first.clock.after(100)
    second = on_file(tmp_path / "s.sqlite", start=later, reinit_driver_count=3, service_down_time=300)
    second.add("node1@lvm", "volume", second.driver("ok"))
    second.engine.start()
    second.engine.advance(0)
    assert steps(second)[-2:] == [
        (100, "retry", "failed_recoverable", "initializing", 2),
        (100, "init_succeeded", "initializing", "up", 2),
    ]


def test_an_attempt_in_flight_at_the_crash_counts_as_failed_interrupted(tmp_path):
    first = on_file(tmp_path / "s.sqlite", reinit_driver_count=3, init_timeout=60, service_down_time=300)
    first.add("node1@lvm", "volume", first.driver("hang"))
    first.engine.start()
    first.engine.advance(5)
    second = on_file(
        tmp_path / "s.sqlite", start=first.clock.now(), reinit_driver_count=3, init_timeout=60, service_down_time=300
    )
    second.add("node1@lvm", "volume", second.driver("ok"))
    second.engine.start()
    second.engine.advance(1)
    failure = second.engine.history()[-3]
    assert (second.t(failure.at), failure.to_state.value, failure.attempt) == (5, "failed_recoverable", 1)
    assert failure.error.type == "Interrupted" and "interrupted" in failure.error.message
    assert issubclass(type(InitTimeout("x")), Exception)
    assert steps(second)[-2:] == [(6, "retry", "failed_recoverable", "initializing", 2),
                                  (6, "init_succeeded", "initializing", "up", 2)]  # fmt: skip


def test_a_service_that_was_up_sets_its_driver_up_again_through_the_table(tmp_path):
    first = on_file(tmp_path / "s.sqlite")
    first.add("node1@lvm", "volume", first.driver("ok"))
    first.engine.start()
    first.engine.advance(15)
    second = on_file(tmp_path / "s.sqlite", start=first.clock.now())
    driver = second.add("node1@lvm", "volume", second.driver("ok"))
    second.engine.start()
    second.engine.advance(0)
    assert second.timeline() == [
        (15, "volume.init.restart", "up", "initializing"),
        (15, "volume.init.success", "initializing", "up"),
    ]
    assert driver.calls == 1


def test_failed_permanent_stays_put_and_its_counters_carry_on(tmp_path):
    first = on_file(tmp_path / "s.sqlite", reinit_driver_count=1)
    first.add("node1@lvm", "volume", first.driver("config_error"))
    first.engine.start()
    first.engine.advance(0)
    second = on_file(tmp_path / "s.sqlite", start=first.clock.now(), reinit_driver_count=1)
    driver = second.add("node1@lvm", "volume", second.driver("ok"))
    second.engine.start()
    second.engine.advance(100)
    row = second.engine.service("node1@lvm")
    assert (row.lifecycle.value, row.total_attempts, driver.calls) == ("failed_permanent", 1, 0)
    assert row.last_error.startswith("ConfigError")


def test_notifications_a_dead_engine_never_delivered_are_sent_by_the_next_one_first(tmp_path):
    down = Bus(failing=True)
    first = on_file(tmp_path / "s.sqlite", sinks=[down])
    first.add("node1@lvm", "volume", first.driver("recoverable", "ok"))
    first.engine.start()
    first.engine.advance(0)
    undelivered = [e["message_id"] for e in first.sink.envelopes]

    up = Bus(failing=False)
    second = on_file(tmp_path / "s.sqlite", start=first.clock.now(), sinks=[up])
    second.add("node1@lvm", "volume", second.driver("ok"))
    second.engine.start()
    second.engine.advance(5)
    received = [e["message_id"] for e in up.envelopes]
    assert received[: len(undelivered)] == undelivered
    assert [e["event_type"] for e in up.envelopes][len(undelivered) :] == ["volume.init.retry", "volume.init.success"]
    assert second.engine.store.pending("bus") == []


def history_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT event, from_state, to_state, attempt FROM statecore_history ORDER BY seq").fetchall()


def wait_for_rows(path: Path, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                if len(history_rows(path)) >= count:
                    return
            except sqlite3.OperationalError:
                pass  # the child is still creating the schema
        time.sleep(0.01)
    raise AssertionError(f"the child wrote fewer than {count} history rows in {timeout} s")


def run_child(path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(path)], env={**os.environ, "PYTHONPATH": str(CHILD.parent.parent)}
    )


def test_sigkill_in_the_middle_of_a_retry_sequence_loses_nothing(tmp_path):
    uninterrupted = tmp_path / "whole.sqlite"
    assert run_child(uninterrupted).wait(timeout=30) == 0

    crashed = tmp_path / "crashed.sqlite"
    child = run_child(crashed)
    wait_for_rows(crashed, 4)  # start, failure 1, retry 1, failure 2 (or more): mid-sequence
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert run_child(crashed).wait(timeout=30) == 0

    expected = history_rows(uninterrupted)
    assert len(expected) == 8 and expected[-1][2] == "failed_permanent"
    assert history_rows(crashed) == expected


def test_reset_after_a_restart_sets_up_the_driver_it_never_loaded(tmp_path):
    first = on_file(tmp_path / "s.sqlite", reinit_driver_count=1)
    first.add("node1@lvm", "volume", first.driver("recoverable"))
    first.engine.start()
    first.engine.advance(10)
    assert first.lifecycle("node1@lvm") == "failed_permanent"

    second = on_file(tmp_path / "s.sqlite", start=first.clock.now(), reinit_driver_count=1)
    fixed = second.add("node1@lvm", "volume", second.driver("ok"))
    second.engine.start()
    second.engine.reset("node1@lvm")  # the admin fixed the storage
    second.engine.advance(1)
    assert (second.lifecycle("node1@lvm"), fixed.calls) == ("up", 1)


def test_a_store_blip_during_start_delays_a_service_instead_of_stranding_it():
    from statecore.store import MemoryStore, StoreUnavailable

    class Blip(MemoryStore):
        fails = 1

        def commit(self, *args, **kwargs):
            if self.fails:
                self.fails -= 1
                raise StoreUnavailable("store write failed: database is locked")
            return super().commit(*args, **kwargs)

    h = Harness(store=Blip())
    for host in ("node1@lvm", "node2@lvm", "node3@lvm"):
        h.add(host, "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(1)
    assert {row.host: row.lifecycle.value for row in h.engine.service_list()} == dict.fromkeys(
        ("node1@lvm", "node2@lvm", "node3@lvm"), "up"
    )
    assert h.t(h.engine.history("node1@lvm")[0].at) == 1  # retried a second later
