"""Time sources. The engine never reads the system clock directly, so a test or a
simulation can run hours of lifecycle in milliseconds with the same code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

DEFAULT_VIRTUAL_START = datetime(2026, 1, 1, tzinfo=UTC)
A = TypeVar("A")
T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


_attempt_elapsed: ContextVar[list[float] | None] = ContextVar("_attempt_elapsed", default=None)


class VirtualClock:
    """A clock that only moves when the engine advances it.

    Inside a driver attempt, ``sleep`` does not move the clock: it adds to the
    attempt's virtual duration, and the engine delivers the attempt's outcome
    that much later (after the init timeout, for a driver that "hangs").
    """

    def __init__(self, start: datetime = DEFAULT_VIRTUAL_START) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime (UTC)")
        self._now = start.astimezone(UTC)
        self.start = self._now

    def now(self) -> datetime:
        return self._now

    def elapsed(self) -> float:
        return (self._now - self.start).total_seconds()

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError(f"virtual time cannot go back from {self._now} to {when}")
        self._now = when

    def sleep(self, seconds: float) -> None:
        spent = _attempt_elapsed.get()
        if spent is None:
            raise RuntimeError("VirtualClock.sleep only works inside a driver attempt; advance the engine instead")
        spent[0] += seconds

    def hang(self) -> None:
        """Make the current attempt never finish (a driver stuck on dead storage)."""
        self.sleep(math.inf)

    def after(self, seconds: float) -> datetime:
        return self._now + timedelta(seconds=seconds)


def measured(call: Callable[[A], T], driver: A) -> tuple[T, float]:
    """``call(driver)`` (one attempt), and the virtual seconds the driver ``sleep``s in it. A plain
    function: a generator-based context manager cost more than a scripted driver's whole attempt."""
    spent = [0.0]
    token = _attempt_elapsed.set(spent)
    try:
        return call(driver), spent[0]
    finally:
        _attempt_elapsed.reset(token)
