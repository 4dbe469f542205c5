"""Running one init attempt (``do_setup`` then ``check_for_setup_error``) off the engine's path.

Real time: a daemon thread per attempt, so a driver stuck on dead storage
blocks nothing; the init-timeout job decides for it, and whatever it returns
later is ignored. Virtual time: the driver runs inline and its ``clock.sleep``
calls set how many virtual seconds later the outcome is delivered, so hangs and
slow setups replay deterministically.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from statecore.clock import measured_attempt
from statecore.drivers import Driver
from statecore.timers import JobKind, Timers, job_id_of

AttemptOutcome = tuple[str, int, BaseException | None]
"""(service id, attempt token, error or None)."""
Outcomes = Callable[[list[AttemptOutcome]], None]
"""Takes the outcomes of attempts that finished together."""


class Attempts(Protocol):
    def launch(self, service_id: str, token: int, driver: Driver) -> None:
        """Run one attempt; its outcome is delivered with ``token``, so a late one can be told stale."""


def run_driver(driver: Driver) -> BaseException | None:
    try:
        driver.do_setup()
        driver.check_for_setup_error()
    except Exception as error:
        return error
    return None


class ThreadAttempts:
    """An attempt's thread puts its outcome in a queue; one job hands over every outcome queued by
    the time it runs, so a fleet coming up is one group commit, not a transaction per service."""

    def __init__(self, deliver: Outcomes, timers: Timers) -> None:
        self.deliver = deliver
        self.timers = timers
        self._queue: list[AttemptOutcome] = []
        self._lock = threading.Lock()

    def launch(self, service_id: str, token: int, driver: Driver) -> None:
        def attempt() -> None:
            outcome = (service_id, token, run_driver(driver))
            with self._lock:
                self._queue.append(outcome)
                first = len(self._queue) == 1
            if first:
                self.timers.at(job_id_of(JobKind.OUTCOME, "queued"), self.timers.clock.now(), self._hand_over)

        threading.Thread(target=attempt, name=f"statecore-attempt-{service_id}", daemon=True).start()

    def _hand_over(self) -> None:
        with self._lock:
            outcomes, self._queue = self._queue, []
        if outcomes:
            self.deliver(outcomes)


class VirtualAttempts:
    def __init__(self, deliver: Outcomes, timers: Timers) -> None:
        self.deliver = deliver
        self.timers = timers

    def launch(self, service_id: str, token: int, driver: Driver) -> None:
        with measured_attempt() as spent:
            error = run_driver(driver)
        if math.isinf(spent[0]):
            return  # a hung driver: only the init-timeout job will speak for this attempt
        when = self.timers.clock.now() + timedelta(seconds=spent[0])
        self.timers.at(job_id_of(JobKind.OUTCOME, service_id), when, self.deliver, [(service_id, token, error)])
