"""The engine's front: what ``advance`` returns, and two bugs the engine's stages fixed.

- ``Engine.fleet()`` on the default ``MemoryStore`` read the wall clock, so in virtual time a
  service showed ``up`` in ``service_list()`` and ``down`` in ``fleet()``;
- the engine promised that drivers are never called under its lock, but in virtual time
  ``do_setup`` ran under it (the attempt was launched as an effect, inside the lock).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from support import BlockingHeartbeats, Harness

from statecore import Engine, MemorySink, Settings, StatecoreError
from statecore.store import service_id
from statecore.table import Event, State
from statecore.testing import ScriptedDriver


def test_fleet_on_the_memory_store_reads_the_engines_clock_like_the_service_list():
    store = BlockingHeartbeats()
    h = Harness(store=store, service_down_time=30, report_interval=10)
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(15)  # up, with a heartbeat at t = 10 (virtual time starts in 2026-01-01, not now)
    assert [r.state for r in h.engine.service_list()] == ["up"]
    assert [r.state for r in h.engine.fleet()] == ["up"]

    store.blocked.add(service_id("volume", "node1@lvm"))
    h.engine.advance(40)  # last heartbeat at 10: 45 s ago in the engine's time
    assert [r.state for r in h.engine.service_list()] == ["down"]
    assert [r.state for r in h.engine.fleet()] == ["down"]


class LockWatchingDriver(ScriptedDriver):
    """Records, for every driver call, whether another thread could take the engine lock then."""

    def __init__(self, engine: Engine, *attempts: str) -> None:
        super().__init__(attempts or ("ok",))
        self.engine = engine
        self.watched: list[tuple[str, bool]] = []

    def _watch(self, name: str) -> None:
        free: list[bool] = []

        def probe() -> None:
            lock: Any = self.engine._lock
            taken = lock.acquire(blocking=False)
            if taken:
                lock.release()
            free.append(taken)

        thread = threading.Thread(target=probe)
        thread.start()
        thread.join(5)
        self.watched.append((name, free == [True]))

    def do_setup(self) -> None:
        self._watch("do_setup")
        super().do_setup()

    def check_for_setup_error(self) -> None:
        self._watch("check_for_setup_error")
        super().check_for_setup_error()

    def is_working(self) -> bool:
        self._watch("is_working")
        return super().is_working()

    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        self._watch("get_volume_stats")
        return super().get_volume_stats(refresh)


def test_drivers_are_never_called_under_the_engine_lock_in_virtual_time():
    engine = Engine.virtual_time(
        settings=Settings(report_interval=1, service_down_time=5, backend_stats_polling_interval=3),
        sinks=[MemorySink()],
    )
    driver = LockWatchingDriver(engine, "recoverable", "ok")
    engine.add_service("node1@lvm", "volume", driver)
    engine.start()
    engine.advance(6)  # a failed attempt, a retry, up, stats, heartbeats, capabilities rounds
    engine.fire("node1@lvm", Event.HEARTBEAT_EXPIRED)
    engine.advance(2)  # back up with a heartbeat
    names = {name for name, _ in driver.watched}
    assert names == {"do_setup", "check_for_setup_error", "is_working", "get_volume_stats"}
    assert [call for call in driver.watched if not call[1]] == []


def test_advance_returns_the_transitions_its_jobs_made_in_order():
    h = Harness(service_down_time=5, report_interval=1, reinit_driver_count=3)
    h.add("node1@lvm", "volume", h.driver("recoverable", "ok"))
    h.engine.start()
    records = h.engine.advance(10)
    assert [(h.t(r.at), r.event.value, r.to_state) for r in records] == [
        (0.0, "init_failed", State.FAILED_RECOVERABLE),
        (1.0, "retry", State.INITIALIZING),
        (1.0, "init_succeeded", State.UP),
    ]
    assert h.engine.advance(1) == []  # heartbeats only: no transition


def test_advance_returns_transitions_not_the_admin_actions_it_audited():
    h = Harness(service_down_time=5, report_interval=1)
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    h.engine.store.set_status(service_id("volume", "node1@lvm"), True, "from another host")
    assert h.engine.advance(1) == []  # the take-over is audited in history, but is no transition
    assert h.engine.history()[-1].event.value == "disable"
    assert h.engine.service("node1@lvm").status == "disabled"


def test_an_error_inside_a_batch_still_starts_what_the_batch_committed():
    h = Harness(reinit_driver_count=0)
    h.add("node1@lvm", "volume", h.driver("config_error", "ok"))
    h.engine.start()
    h.engine.advance(0)
    assert h.lifecycle("node1@lvm") == "failed_permanent"
    try:
        with h.engine.batch():
            h.engine.reset("node1@lvm")
            raise RuntimeError("the embedding service's own error")
    except RuntimeError:
        pass
    assert h.lifecycle("node1@lvm") == "initializing"  # committed when the block ended
    h.engine.advance(0)  # its attempt was launched after the commit: its outcome is due now
    assert h.lifecycle("node1@lvm") == "up"


def test_services_are_registered_and_started_outside_a_batch():
    h = Harness()
    h.engine.start()
    with h.engine.batch(), pytest.raises(StatecoreError, match=r"register services outside engine\.batch\(\)"):
        h.add("node1@lvm", "volume", h.driver("ok"))
    assert h.engine.service_list() == []
