"""Shared helpers for the engine tests: a virtual engine, its sink and its timeline."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any

from statecore import Engine, MemorySink, Settings
from statecore.clock import DEFAULT_VIRTUAL_START
from statecore.sim.faults import BlockingHeartbeats
from statecore.store import MemoryStore
from statecore.testing import ScriptedDriver

__all__ = ["BlockingHeartbeats", "FlakySink", "Harness", "chain_breaks", "seconds_until"]


def chain_breaks(store: Any, sids: Sequence[str]) -> int:
    """History rows that do not start where the service's previous row ended: two engines wrote."""
    breaks = 0
    for sid in sids:
        rows = store.history(sid)
        breaks += sum(1 for before, after in pairwise(rows) if before.to_state != after.from_state)
    return breaks


def seconds_until(predicate: Callable[[], bool], limit: float, what: str) -> float:
    """Real-time tests: how long until ``predicate`` holds, looked at every 50 ms; fails after ``limit``."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {limit} s: {what}")


class Harness:
    """A virtual-time engine with a memory sink, and helpers that speak in seconds since start."""

    def __init__(
        self,
        store: Any = None,
        sinks: Sequence[Any] = (),
        start: datetime | None = None,
        owner: str | None = None,
        seed: int = 0,
        **settings: Any,
    ) -> None:
        """``seed``: of the message ids too, so engines sharing one store need different ones."""
        self.sink = MemorySink()
        self.engine = Engine.virtual_time(
            start or DEFAULT_VIRTUAL_START,
            settings=Settings(**settings),
            sinks=[self.sink, *sinks],
            store=store or MemoryStore(),
            owner=owner,
            seed=seed,
        )
        self.clock = self.engine.clock

    def driver(self, *attempts: str, **options: Any) -> ScriptedDriver:
        return ScriptedDriver(attempts or ("ok",), clock=self.clock, **options)

    def add(self, host: str, binary: str, driver: Any, **options: Any) -> ScriptedDriver:
        self.engine.add_service(host, binary, driver, options=options or None)  # type: ignore[arg-type]
        return driver

    def t(self, moment: datetime | str | None) -> float | None:
        """Seconds since the virtual start, for a datetime or an ISO string from an envelope."""
        if moment is None:
            return None
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        return (moment - DEFAULT_VIRTUAL_START).total_seconds()

    def timeline(self, host: str | None = None) -> list[tuple[float, str, str, str]]:
        """(t, event_type, from, to) of every notification, optionally of one host."""
        return [
            (self.t(e["timestamp"]), e["event_type"], e["payload"]["from_state"], e["payload"]["to_state"])
            for e in self.sink.envelopes
            if host is None or e["payload"]["host"] == host
        ]

    def lifecycle(self, host: str) -> str:
        return self.engine.service(host).lifecycle.value

    def job_ids(self) -> list[str]:
        return [job_id for job_id, _ in self.engine.jobs()]


class FlakySink:
    """Raises on its first ``failures`` calls, then keeps every envelope."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.envelopes: list[Any] = []

    def emit(self, envelope: Any) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(f"message bus unavailable (call {self.calls})")
        self.envelopes.append(envelope)
