"""Many per-service deadlines behind one APScheduler job.

Every live service has a ``heartbeat_expired`` deadline that heartbeats keep
pushing back. One job per service, moved on every heartbeat, costs a job-store
update per heartbeat; here a heap holds (deadline, key) entries, one entry per
key is authoritative (the latest armed), stale entries are skipped when they
surface, and a single one-shot job is armed at the earliest authoritative
deadline. In virtual time the job fires at the exact instant of each deadline.

In real time the job is re-armed no sooner than ``resolution`` after the instant it handled:
deadlines that lie close together (a fleet that came up over a few seconds has its first
deadlines spread over those seconds) are then handled by one run of the job instead of one run
each, which through a ``BackgroundScheduler`` cost about 0.3 ms of CPU apiece; a deadline fires
at most ``resolution`` late.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
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
        self._armed: datetime | None = None

    def arm(self, key: str, when: datetime) -> None:
        """Set ``key``'s deadline, replacing any earlier one."""
        self._current[key] = when
        heapq.heappush(self._heap, (when, key))
        if self._armed is None or when < self._armed:
            self._arm_job(when)

    def disarm(self, key: str) -> None:
        self._current.pop(key, None)

    def get(self, key: str) -> datetime | None:
        return self._current.get(key)

    def pop_due(self, now: datetime) -> list[str]:
        """Keys whose deadline has come, in deadline order; they are disarmed, the job re-armed."""
        self._armed = None
        due: list[str] = []
        heap, current = self._heap, self._current
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if current.get(key) == when:
                del current[key]
                due.append(key)
        while heap and current.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # stale entries on top would arm the job for nothing
        if heap:
            self._arm_job(max(heap[0][0], now + self.resolution) if self.resolution else heap[0][0])
        return due

    def _arm_job(self, when: datetime) -> None:
        self._armed = when
        self.timers.at(self.job_id, when, self.on_due)
