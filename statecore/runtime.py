"""Real time or virtual time: everything that differs between the two, chosen once.

The engine never asks which time it runs in. A runtime hands it a clock, a
scheduler, the way attempts run, how notifications reach the sinks, how stats
polls and driver probes are run, how close two expiries must be to share one
run of the expiry job, and where message ids come from:

- ``RealRuntime``: the wall clock, a ``BackgroundScheduler``, a thread per
  attempt, a delivery thread, a pool of stats workers, probes in threads, and
  ``os.urandom`` message ids;
- ``VirtualRuntime``: a ``VirtualClock``, a ``VirtualScheduler`` that runs jobs
  when the owner advances time, attempts and deliveries inline, and message ids
  from a seeded generator, so a replay is byte-identical.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from statecore.attempts import Attempts, Current, Outcomes, ThreadAttempts, VirtualAttempts
from statecore.clock import Clock, RealClock, VirtualClock
from statecore.notify import DeliveryThread, Notifier
from statecore.probes import Prober
from statecore.records import uuid4_texts
from statecore.timers import JobKind, Timers, VirtualScheduler, background_scheduler, job_id_of
from statecore.workers import DaemonWorkers

REAL_TIME_EXPIRY_RESOLUTION = timedelta(milliseconds=50)
"""Real-time expiries that lie this close together share one run of the expiry job (see deadlines.py)."""
STATS_WORKERS = 8
"""Threads for the stats polls of volumes entering ``up`` in real time (APScheduler's pool had 10)."""
MESSAGE_ID_BATCH = 512
"""Message ids formatted at a time (``uuid4_texts``)."""


class Delivery(Protocol):
    """Hands queued notifications to the sinks, never under the engine lock."""

    def start(self) -> None: ...

    def poke(self) -> None:
        """Something was queued: deliver it (now, or soon on the delivery thread)."""

    def stop(self) -> None:
        """Deliver what the sinks will still take, then stop."""


class Workers(Protocol):
    def submit(self, func: Callable[..., None], *args: Any) -> None: ...

    def stop(self) -> None: ...


class Runtime(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def timers(self) -> Timers: ...

    @property
    def prober(self) -> Prober: ...

    @property
    def expiry_resolution(self) -> timedelta: ...

    @property
    def message_id(self) -> Callable[[], str]:
        """A new uuid4 text per call; the engine calls it under its lock."""

    def attempts(self, deliver: Outcomes, current: Current) -> Attempts: ...

    def delivery(self, notifier: Notifier) -> Delivery: ...

    def workers(self) -> Workers: ...


class RealRuntime:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or RealClock()
        self.timers = Timers(self.clock, background_scheduler())
        self.prober = Prober(threaded=True)
        self.expiry_resolution = REAL_TIME_EXPIRY_RESOLUTION
        self.message_id = MessageIds(lambda bits: int.from_bytes(os.urandom(bits // 8)))

    def attempts(self, deliver: Outcomes, current: Current) -> Attempts:
        """A pool that grows past stuck driver calls: a driver stuck on dead storage blocks nothing."""
        return ThreadAttempts(deliver, self.timers, current)

    def delivery(self, notifier: Notifier) -> Delivery:
        return DeliveryThread(notifier)

    def workers(self) -> Workers:
        """A ``get_volume_stats`` that hangs holds one worker, not the batch of volumes that came up."""
        return DaemonWorkers("statecore-stats", STATS_WORKERS)


class VirtualRuntime:
    def __init__(self, clock: VirtualClock | None = None, seed: int = 0) -> None:
        self.clock: VirtualClock = clock or VirtualClock()
        self.timers = Timers(self.clock, VirtualScheduler(self.clock))
        self.prober = Prober(threaded=False)
        self.expiry_resolution = timedelta(0)
        self.message_id = MessageIds(random.Random(seed).getrandbits)
        """Seeded, so a replay sends byte-identical notifications."""

    def attempts(self, deliver: Outcomes, current: Current) -> Attempts:
        """Inline: an attempt runs the moment it is launched, so it is always the current one."""
        return VirtualAttempts(deliver, self.timers)

    def delivery(self, notifier: Notifier) -> Delivery:
        return InlineDelivery(notifier, self.timers)

    def workers(self) -> Workers:
        return InlineWorkers()


def runtime_for(clock: Clock | None, seed: int = 0) -> Runtime:
    """The runtime a clock implies: ``Engine(clock=VirtualClock())`` is an engine in virtual time."""
    if isinstance(clock, VirtualClock):
        return VirtualRuntime(clock, seed)
    return RealRuntime(clock)


class MessageIds:
    """uuid4 texts from ``draw`` (random bits: ``os.urandom``, or a seeded generator), formatted
    ``MESSAGE_ID_BATCH`` at a time. The ids are those of one ``draw(128)`` per id: a seeded
    ``getrandbits(128 * n)`` holds ``n`` successive 128-bit draws (``uuid4_texts``). Two threads never
    get one id: a list's ``pop`` is atomic (two that find it empty at once each draw a batch)."""

    def __init__(self, draw: Callable[[int], int]) -> None:
        self._draw = draw
        self._ready: list[str] = []

    def __call__(self) -> str:
        try:
            return self._ready.pop()
        except IndexError:
            self._ready = ready = uuid4_texts(self._draw(128 * MESSAGE_ID_BATCH), MESSAGE_ID_BATCH)
            return ready.pop()


class InlineDelivery:
    """Virtual time: deliver at once, on the caller's thread; a refusing sink is offered the rest
    again after the notifier's backoff, by a timer, so virtual time decides when."""

    def __init__(self, notifier: Notifier, timers: Timers) -> None:
        self.notifier = notifier
        self.timers = timers

    def start(self) -> None:
        """Nothing runs in the background."""

    def poke(self) -> None:
        now = self.timers.clock.now()
        wait = self.notifier.deliver(now.timestamp())
        if wait is not None:
            when = now + timedelta(seconds=wait)
            self.timers.at(job_id_of(JobKind.NOTIFY, "retry"), when, self.poke)

    def stop(self) -> None:
        self.notifier.deliver()


class InlineWorkers:
    """Virtual time: a submitted call runs at once, in order."""

    def submit(self, func: Callable[..., None], *args: Any) -> None:
        func(*args)

    def stop(self) -> None:
        """Nothing to stop."""
