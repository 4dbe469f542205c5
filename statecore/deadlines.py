"""Many per-service deadlines behind one APScheduler job.

Every live service has a ``heartbeat_expired`` deadline that heartbeats keep
pushing back. One job per service, moved on every heartbeat, costs a job-store
update per heartbeat; here a heap holds (deadline, key) entries and a single
one-shot job is armed at the earliest of them. In virtual time the job fires at
the exact instant of each deadline.

A key's deadline (``get``) is the latest armed; its heap entry is the earliest one
still queued for it. A deadline moved later needs no new entry: when the earlier
one surfaces, the key is queued again at its deadline (a service that comes back
``up`` before its old deadline passed costs a dict write, not a heap push, and the
heap holds about one entry per key). Only a deadline moved earlier pushes one;
entries that no longer stand for their key are skipped when they surface.

In real time the job is re-armed no sooner than ``resolution`` after the instant it handled:
deadlines that lie close together (a fleet that came up over a few seconds has its first
deadlines spread over those seconds) are then handled by one run of the job instead of one run
each, which through a ``BackgroundScheduler`` cost about 0.3 ms of CPU apiece; a deadline fires
at most ``resolution`` late.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from statecore.timers import Timers


class Deadlines:
    def __init__(
        self, timers: Timers, job_id: str, on_due: Callable[[], None], resolution: timedelta = timedelta(0)
    ) -> None:
        self.timers = timers
        self.job_id = job_id
        self.on_due = on_due
        self.resolution = resolution
        self._heap: list[tuple[datetime, str]] = []
        self._current: dict[str, datetime] = {}
        self._queued: dict[str, datetime] = {}
        """Per key, the instant of its standing heap entry (the earliest queued for it)."""
        self._armed: datetime | None = None

    def arm(self, key: str, when: datetime) -> None:
        """Set ``key``'s deadline, replacing any earlier one."""
        self._current[key] = when
        queued = self._queued.get(key)
        if queued is None or when < queued:  # later than its standing entry: queued again when that surfaces
            self._queued[key] = when
            heapq.heappush(self._heap, (when, key))
        if self._armed is None or when < self._armed:
            self._arm_job(when)

    def arm_many(self, deadlines: Iterable[tuple[str, datetime]]) -> None:
        """``arm`` for many keys (the watchdog moving a live fleet's deadlines): one call, and the
        job re-armed once, at the earliest."""
        current, queued, heap, earliest = self._current, self._queued, self._heap, None
        for key, when in deadlines:
            current[key] = when
            standing = queued.get(key)
            if standing is None or when < standing:
                queued[key] = when
                heapq.heappush(heap, (when, key))
            if earliest is None or when < earliest:
                earliest = when
        if earliest is not None and (self._armed is None or earliest < self._armed):
            self._arm_job(earliest)

    def disarm(self, key: str) -> None:
        self._current.pop(key, None)

    def get(self, key: str) -> datetime | None:
        return self._current.get(key)

    def pop_due(self, now: datetime) -> list[str]:
        """Keys whose deadline has come, in deadline order; they are disarmed, the job re-armed."""
        self._armed = None
        due: list[tuple[datetime, str]] = []
        heap, current, queued = self._heap, self._current, self._queued
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if queued.get(key) != when:
                continue  # not its standing entry: an earlier one was pushed since
            del queued[key]
            deadline = current.get(key)
            if deadline is None:
                continue  # disarmed
            if deadline <= now:
                del current[key]
                due.append((deadline, key))
            else:  # moved later since this entry was queued
                queued[key] = deadline
                heapq.heappush(heap, (deadline, key))
        while heap and (queued.get(heap[0][1]) != heap[0][0] or heap[0][1] not in current):
            when, key = heapq.heappop(heap)  # entries on top that stand for nothing would arm the job for nothing
            if queued.get(key) == when:
                del queued[key]
        if heap:
            self._arm_job(max(heap[0][0], now + self.resolution) if self.resolution else heap[0][0])
        if len(due) > 1:  # a key queued before its deadline moved surfaced at the earlier instant
            due.sort()
        return [key for _, key in due]

    def _arm_job(self, when: datetime) -> None:
        self._armed = when
        self.timers.at(self.job_id, when, self.on_due)
