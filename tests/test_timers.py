"""VirtualScheduler: real APScheduler jobs, fired at their exact virtual instants, in order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from statecore.clock import VirtualClock
from statecore.timers import Timers


def make() -> tuple[Timers, VirtualClock, list[tuple[float, str]]]:
    clock = VirtualClock()
    timers = Timers(clock)
    timers.start()
    return timers, clock, []


def test_jobs_fire_at_their_instants_in_time_then_id_order():
    timers, clock, log = make()

    def note(name: str) -> None:
        log.append((clock.elapsed(), name))

    timers.at("b", clock.after(5), note, "b")
    timers.at("a", clock.after(5), note, "a")
    timers.at("c", clock.after(2), note, "c")
    assert timers.advance(10) == 3
    assert log == [(2, "c"), (5, "a"), (5, "b")]
    assert clock.elapsed() == 10


def test_a_job_that_rearms_itself_under_its_own_id_keeps_the_new_schedule():
    timers, clock, log = make()

    def tick(n: int) -> None:
        log.append((clock.elapsed(), str(n)))
        if n < 3:
            timers.at("tick", clock.after(1), tick, n + 1)

    timers.at("tick", clock.after(1), tick, 1)
    timers.advance(10)
    assert log == [(1, "1"), (2, "2"), (3, "3")]


def test_interval_job_runs_every_period_from_its_first_instant():
    timers, clock, log = make()
    timers.every("report", 10, clock.after(10), lambda: log.append((clock.elapsed(), "r")))
    timers.advance(35)
    assert [t for t, _ in log] == [10, 20, 30]
    assert timers.due("report") == clock.start + timedelta(seconds=40)


def test_a_job_cancelled_by_an_earlier_job_at_the_same_instant_does_not_run():
    timers, clock, log = make()
    timers.at("a", clock.after(1), lambda: timers.cancel("b"))
    timers.at("b", clock.after(1), lambda: log.append((clock.elapsed(), "b")))
    timers.advance(2)
    assert log == []


def test_virtual_time_never_goes_back():
    clock = VirtualClock()
    clock.set(clock.after(5))
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(clock.start)


def test_virtual_sleep_outside_an_attempt_is_refused():
    with pytest.raises(RuntimeError, match="inside a driver attempt"):
        VirtualClock().sleep(1)


def test_advance_is_refused_in_real_time():
    from statecore.clock import RealClock

    with pytest.raises(RuntimeError, match="VirtualClock"):
        Timers(RealClock()).advance(1)
