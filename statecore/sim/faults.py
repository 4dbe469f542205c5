"""Faults a scenario injects from outside the engine, the way the real world would cause them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from statecore.store import MemoryStore


class BlockingHeartbeats(MemoryStore):
    """A store that refuses the heartbeats of chosen services, as a host cut off from the database.

    The engine is not told: its report job simply finds the heartbeats unrecorded,
    so the service goes ``down`` by the ordinary expiry path and comes back with
    the first heartbeat that is recorded again.
    """

    def __init__(self) -> None:
        super().__init__()
        self.blocked: set[str] = set()

    def record_heartbeats(self, leases: Mapping[str, int], at: datetime) -> Collection[str]:
        if not self.blocked:  # nearly every report of a scenario: no copy of the fleet's leases
            return super().record_heartbeats(leases, at)
        return super().record_heartbeats({sid: gen for sid, gen in leases.items() if sid not in self.blocked}, at)
