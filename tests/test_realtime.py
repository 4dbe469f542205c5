"""Real-time smoke tests: BackgroundScheduler, real threads, real timeouts; each bounded to seconds."""

from __future__ import annotations

import threading
from typing import Any

from statecore import Engine, MemorySink, Settings
from statecore.testing import ScriptedDriver


class Waiter(MemorySink):
    """A sink that lets a test wait for a notification instead of sleeping."""

    def __init__(self, event_type: str) -> None:
        super().__init__()
        self.event_type = event_type
        self.seen = threading.Event()

    def emit(self, envelope: Any) -> None:
        super().emit(envelope)
        if envelope["event_type"] == self.event_type:
            self.seen.set()


def test_driver_failing_once_is_up_about_one_second_later():
    waiter = Waiter("volume.init.success")
    engine = Engine(Settings(), sinks=[waiter])
    engine.add_service("node1@lvm", "volume", ScriptedDriver(["recoverable", "ok"]))
    with engine:
        assert waiter.seen.wait(timeout=5), waiter.event_types()
        row = engine.service("node1@lvm")
    assert row.lifecycle.value == "up" and row.total_attempts == 2
    assert waiter.event_types() == ["volume.init.start", "volume.init.failure", "volume.init.retry",
                                    "volume.init.success"]  # fmt: skip
    first, last = (engine.history()[i].at for i in (0, -1))
    assert 0.9 <= (last - first).total_seconds() < 3


def test_hung_driver_times_out_in_real_time_without_blocking_other_services():
    waiter = Waiter("backup.init.failure")
    engine = Engine(Settings(backup_initialization_timeout=0.5), sinks=[waiter])
    hung = ScriptedDriver(["hang"])
    engine.add_service("bk1", "backup", hung)
    engine.add_service("node1@lvm", "volume", ScriptedDriver(["ok"]))
    with engine:
        assert waiter.seen.wait(timeout=5)
        assert engine.service("node1@lvm").state == "up"
        failure = waiter.envelopes[-1]["payload"]
        hung.release()  # the stuck call returns now; its success must be ignored
        returned = threading.Event()
        deadline = threading.Timer(5, returned.set)  # bounded: the released call returns at once
        deadline.start()
        while not returned.is_set() and any(t.name == "statecore-attempt-backup/bk1" for t in threading.enumerate()):
            returned.wait(0.01)
        deadline.cancel()
    assert failure["error"]["type"] == "InitTimeout" and failure["to_state"] == "failed_permanent"
    assert engine.service("bk1").lifecycle.value == "failed_permanent"


def test_shutdown_right_after_up_raises_nothing_in_the_scheduler_thread():
    """A one-shot stats job is due at the instant of `up`; stopping then must not trip APScheduler."""
    failures: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)
    try:
        for _ in range(5):
            waiter = Waiter("volume.init.success")
            engine = Engine(Settings(), sinks=[waiter])
            engine.add_service("node1@lvm", "volume", ScriptedDriver(["ok"]))
            with engine:
                assert waiter.seen.wait(timeout=5)
    finally:
        threading.excepthook = previous
    assert failures == []


class HangingProbe(ScriptedDriver):
    """Sets up fine, then hangs in is_working() until released, as a driver stuck on dead storage."""

    def __init__(self) -> None:
        super().__init__(["ok"])
        self.hang = threading.Event()
        self.release_probe = threading.Event()

    def is_working(self) -> bool:
        if self.hang.is_set():
            self.release_probe.wait(10)
        return True


def test_a_driver_hanging_in_is_working_does_not_take_its_neighbours_down():
    waiter = Waiter("volume.service.down")
    settings = Settings(report_interval=0.2, service_down_time=1, backend_stats_polling_interval=3)
    engine = Engine(settings, sinks=[waiter])
    bad = HangingProbe()
    engine.add_service("bad@lvm", "volume", bad)
    engine.add_service("good@lvm", "volume", ScriptedDriver(["ok"]))
    with engine:
        bad.hang.set()
        assert waiter.seen.wait(timeout=5)  # the hung one expires...
        states = {row.host: row.lifecycle.value for row in engine.service_list()}
        bad.release_probe.set()
    assert waiter.envelopes[-1]["payload"]["host"] == "bad@lvm"
    assert states == {"bad@lvm": "down", "good@lvm": "up"}  # ...its neighbour keeps its heartbeats


class StatsCall(ScriptedDriver):
    """Initializes at once; its stats call says it was asked and, if ``hang``, blocks until released."""

    def __init__(self, *, hang: bool) -> None:
        super().__init__(["ok"])
        self.hang = hang
        self.asked, self.released = threading.Event(), threading.Event()

    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        self.asked.set()
        if self.hang:
            self.released.wait(timeout=10)
        return {"backend_state": "up"}


def test_a_hung_stats_call_does_not_hold_up_other_volumes_first_poll():
    hung, other = StatsCall(hang=True), StatsCall(hang=False)
    engine = Engine(Settings(), sinks=[MemorySink()])
    engine.add_service("a@lvm", "volume", hung)  # comes up first, so its poll is first in the batch
    engine.add_service("b@lvm", "volume", other)
    try:
        with engine:
            assert hung.asked.wait(timeout=5)
            assert other.asked.wait(timeout=5), "b's first stats poll waited for a's hung call"
            assert not hung.released.is_set()
    finally:
        hung.released.set()


def test_attempts_behind_stuck_driver_calls_still_run():
    """Eight hung drivers hold the pool's core threads; five healthy services registered after them
    still come up, on threads the pool adds once the eight count as stuck (real time, bounded)."""
    hung = [ScriptedDriver(["hang"]) for _ in range(8)]
    waiter = Waiter("volume.init.success")
    done = threading.Event()

    class Five(MemorySink):
        def emit(self, envelope: Any) -> None:
            super().emit(envelope)
            if self.event_types().count("volume.init.success") == 5:
                done.set()

    five = Five()
    engine = Engine(Settings(init_timeout=30), sinks=[waiter, five])
    for index, driver in enumerate(hung):
        engine.add_service(f"stuck{index}@lvm", "volume", driver)
    for index in range(5):
        engine.add_service(f"node{index}@lvm", "volume", ScriptedDriver(["ok"]))
    try:
        with engine:
            assert done.wait(timeout=10), five.event_types()
            attempt_threads = [t for t in threading.enumerate() if t.name.startswith("statecore-attempt-")]
            assert len(attempt_threads) <= 8 + 8  # the core, and one growth step past it
    finally:
        for driver in hung:
            driver.release()


def test_a_hung_driver_holds_one_thread_however_many_retries():
    """A backup whose do_setup never returns, retried every 0.3 s with a 0.2 s init timeout: every
    retry fails at once (PreviousAttemptStuck) instead of leaving one more thread behind (real
    time, bounded to a few seconds)."""
    failures = threading.Semaphore(0)

    class Failures(MemorySink):
        def emit(self, envelope: Any) -> None:
            super().emit(envelope)
            if envelope["event_type"] == "backup.init.failure":
                failures.release()

    sink = Failures()
    hung = ScriptedDriver(["hang"])
    settings = Settings(
        backup_periodic_initialization=True, periodic_interval=0.3, backup_initialization_timeout=0.2,
        report_interval=1, service_down_time=3,
    )  # fmt: skip
    engine = Engine(settings, sinks=[sink])
    engine.add_service("bk1", "backup", hung)
    try:
        with engine:
            assert all(failures.acquire(timeout=5) for _ in range(5))  # the first attempt and four retries
            threads = [t for t in threading.enumerate() if t.name == "statecore-attempt-backup/bk1"]
        errors = [e["payload"]["error"]["type"] for e in sink.envelopes if e["event_type"] == "backup.init.failure"]
        assert errors[0] == "InitTimeout" and set(errors[1:5]) == {"PreviousAttemptStuck"}
        assert len(threads) == 1
    finally:
        hung.release()
