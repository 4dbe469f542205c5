"""Running one init attempt (``do_setup`` then ``check_for_setup_error``) off the engine's path.

Real time: attempts run on a pool of daemon threads that grows past its core
size whenever every thread is caught in a driver call, so a driver stuck on dead
storage blocks nothing; the init-timeout job decides for it, and whatever it
returns later is ignored. Virtual time: the driver runs inline and its ``clock.sleep``
calls set how many virtual seconds later the outcome is delivered, so hangs and
slow setups replay deterministically.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

from statecore.clock import measured
from statecore.drivers import Driver
from statecore.errors import PreviousAttemptStuck
from statecore.timers import JobKind, Timers, job_id_of

AttemptOutcome = tuple[str, int, BaseException | None]
"""(service id, attempt token, error or None)."""
Outcomes = Callable[[Sequence[AttemptOutcome]], None]
"""Takes the outcomes of attempts that finished together."""
Current = Callable[[str, int], bool]
"""Whether the attempt (service id, token) is still the one wanted."""


class Attempts(Protocol):
    def launch(self, service_id: str, token: int, driver: Driver) -> None:
        """Run one attempt; its outcome is delivered with ``token``, so a late one can be told stale."""

    def stop(self) -> None:
        """The engine stops; threads it no longer needs end."""


def run_driver(driver: Driver) -> BaseException | None:
    try:
        driver.do_setup()
        driver.check_for_setup_error()
    except Exception as error:
        return error
    return None


CORE_THREADS = 8
"""Threads that serve attempts however quick the drivers are (a fleet starting shares them)."""
STUCK_AFTER = 0.5
"""Seconds in one driver call after which a thread counts as stuck, and a new one may start."""
IDLE_EXIT = 30.0
"""Seconds a thread waits for an attempt before it ends (the next attempt starts one again)."""


class ThreadAttempts:
    """Attempts on a pool of daemon threads; outcomes queued and handed over in groups.

    Up to ``CORE_THREADS`` threads take attempts from a queue. While attempts wait and every
    thread has been in a driver call for ``STUCK_AFTER`` seconds, another thread starts, so a
    stuck driver holds one thread and never the others' attempts; a thread idle for
    ``IDLE_EXIT`` seconds ends, and ``stop`` ends the idle ones at once. A service whose driver
    is still in an earlier attempt's call gets no second thread: its new attempt fails at once
    with ``PreviousAttemptStuck`` (recoverable), so a driver hung for hours holds one thread. A thread running an
    attempt is named after its service (``statecore-attempt-<service>``). Starting a thread per
    attempt cost a fleet of 10,000 two seconds of its start-up. An attempt's outcome goes to a
    queue; one job hands over every outcome queued by the time it runs, so a fleet coming up is
    one group commit.
    """

    def __init__(self, deliver: Outcomes, timers: Timers, current: Current) -> None:
        self.deliver = deliver
        self.timers = timers
        self.current = current
        self._queue: list[AttemptOutcome] = []
        self._lock = threading.Lock()
        self._pool = threading.Condition(threading.Lock())
        self._tasks: deque[tuple[str, int, Driver]] = deque()
        self._threads = self._idle = 0
        self._busy: dict[int, float] = {}
        """Thread ident -> when its current driver call began (monotonic)."""
        self._calling: set[str] = set()
        """Services whose driver is in a call: at most one thread per service is ever in one."""
        self._recheck_armed = False
        self._stopping = False

    def stop(self) -> None:
        """The engine stops: idle threads end now; a thread in a driver call ends when it returns."""
        with self._pool:
            self._stopping = True
            self._tasks.clear()
            self._pool.notify_all()

    def launch(self, service_id: str, token: int, driver: Driver) -> None:
        with self._pool:
            stuck = service_id in self._calling  # its driver is still in the call an earlier attempt made
            if not stuck:
                self._tasks.append((service_id, token, driver))
                self._pool.notify()
                self._grow()
        if stuck:
            error = PreviousAttemptStuck("the previous attempt's driver call has not returned; not starting another")
            self._finished((service_id, token, error))

    def _grow(self) -> None:
        """Under the pool lock: start threads for attempts that would otherwise wait: up to the core
        size, and past it, up to ``CORE_THREADS`` more each ``STUCK_AFTER`` while every thread is
        stuck in a call. While attempts still wait, it looks again ``STUCK_AFTER`` later."""
        waiting = len(self._tasks) - self._idle
        if waiting <= 0:
            return  # idle threads will take them
        now = time.monotonic()
        stuck = len(self._busy) == self._threads and all(now - t >= STUCK_AFTER for t in self._busy.values())
        start = min(waiting, CORE_THREADS if stuck else max(0, CORE_THREADS - self._threads))
        for _ in range(start):
            self._threads += 1
            threading.Thread(target=self._work, name="statecore-attempt-idle", daemon=True).start()
        if waiting > start and not self._recheck_armed:
            self._recheck_armed = True
            when = self.timers.clock.now() + timedelta(seconds=STUCK_AFTER)
            self.timers.at(job_id_of(JobKind.OUTCOME, "pool"), when, self._recheck)

    def _recheck(self) -> None:
        with self._pool:
            self._recheck_armed = False
            if self._tasks:
                self._grow()

    def _work(self) -> None:
        me = threading.current_thread()
        with self._pool:
            while True:
                if not self._tasks:
                    if self._stopping:
                        self._threads -= 1
                        return
                    self._idle += 1
                    self._pool.wait(timeout=IDLE_EXIT)
                    self._idle -= 1
                    if not self._tasks:
                        self._threads -= 1
                        return
                service_id, token, driver = self._tasks.popleft()
                if not self.current(service_id, token):
                    continue  # abandoned while it waited (its timeout came first): never call the driver
                self._busy[me.ident or 0] = time.monotonic()
                self._calling.add(service_id)
                me.name = f"statecore-attempt-{service_id}"
                self._pool.release()
                try:
                    self._finished((service_id, token, run_driver(driver)))
                finally:
                    self._pool.acquire()
                    me.name = "statecore-attempt-idle"
                    del self._busy[me.ident or 0]
                    self._calling.discard(service_id)

    def _finished(self, outcome: AttemptOutcome) -> None:
        with self._lock:
            self._queue.append(outcome)
            first = len(self._queue) == 1
        if first:
            self.timers.at(job_id_of(JobKind.OUTCOME, "queued"), self.timers.clock.now(), self._hand_over)

    def _hand_over(self) -> None:
        with self._lock:
            outcomes, self._queue = self._queue, []
        if outcomes:
            self.deliver(outcomes)


class VirtualAttempts:
    def __init__(self, deliver: Outcomes, timers: Timers) -> None:
        self.deliver = deliver
        self.timers = timers

    def stop(self) -> None:
        """Attempts run inline: nothing to stop."""

    def launch(self, service_id: str, token: int, driver: Driver) -> None:
        error, seconds = measured(run_driver, driver)
        if error is not None:  # only its type and message are kept (ErrorInfo): its traceback holds the
            error.__traceback__ = None  # attempt's frames in a cycle with it, about 25 objects for the collector
        if math.isinf(seconds):
            return  # a hung driver: only the init-timeout job will speak for this attempt
        now = self.timers.clock.now()
        when = now + timedelta(seconds=seconds) if seconds else now
        self.timers.at(job_id_of(JobKind.OUTCOME, service_id), when, self._deliver, service_id, token, error)

    def _deliver(self, service_id: str, token: int, error: BaseException | None) -> None:
        """The outcome travels flat in the job's arguments: a tuple of atoms, which the collector
        stops tracking at its first pass (a tuple holding a tuple may take two)."""
        self.deliver(((service_id, token, error),))
