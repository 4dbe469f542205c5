"""Test doubles for the table-driven and property tests: a scripted driver and a store that drops heartbeats.

Both are driven by the test, never by wall time: a scripted attempt takes its
virtual duration through ``VirtualClock.sleep`` and the engine delivers its
outcome that much later, so every run replays exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from statecore import ConfigError, Engine, MemorySink, Settings
from statecore.clock import DEFAULT_VIRTUAL_START, VirtualClock
from statecore.store import MemoryStore
from statecore.table import Binary

Result = Literal["ok", "fail", "config"]
"""What an attempt ends with: success, a recoverable error, or an unrecoverable ``ConfigError``."""


class BackendUnreachable(ConnectionError):
    """The recoverable error a scripted driver raises."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One scripted attempt: its result, its virtual duration, and whether it never finishes."""

    result: Result | None = "ok"
    """None: whatever the driver's ``default`` result is when the attempt runs."""
    duration: float = 0.0
    hang: bool = False


@dataclass
class ScriptedDriver:
    """A driver whose attempts follow ``script`` (first in, first used), then ``default`` forever."""

    script: deque[Attempt] = field(default_factory=deque)
    default: Attempt = field(default_factory=Attempt)
    working: bool = True
    supported: bool = True
    clock: VirtualClock | None = None
    attempts: int = 0

    @classmethod
    def of(cls, *attempts: Attempt | Result, then: Attempt | Result = "ok", **flags: Any) -> ScriptedDriver:
        def as_attempt(item: Attempt | Result) -> Attempt:
            return item if isinstance(item, Attempt) else Attempt(item)

        return cls(script=deque(as_attempt(a) for a in attempts), default=as_attempt(then), **flags)

    def do_setup(self) -> None:
        self.attempts += 1
        attempt = self.script.popleft() if self.script else self.default
        assert self.clock is not None, "bind the engine's clock before the first attempt"
        if attempt.hang:
            self.clock.hang()
            return
        if attempt.duration:
            self.clock.sleep(attempt.duration)
        result = attempt.result if attempt.result is not None else self.default.result
        if result == "config":
            raise ConfigError(f"scripted config error on attempt {self.attempts}")
        if result == "fail":
            raise BackendUnreachable(f"scripted outage on attempt {self.attempts}")

    def check_for_setup_error(self) -> None:
        """Everything is decided in ``do_setup``."""

    def is_working(self) -> bool:
        return self.working

    def get_volume_stats(self, refresh: bool = False) -> Mapping[str, Any]:
        return {"volume_backend_name": "scripted", "backend_state": "up"}


class BlockingStore(MemoryStore):
    """A MemoryStore whose heartbeat batch drops the ids in ``blocked`` (a store row that was not written)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: set[str] = set()

    def record_heartbeats(self, leases: Mapping[str, int], at: datetime) -> Collection[str]:
        return super().record_heartbeats({sid: gen for sid, gen in leases.items() if sid not in self.blocked}, at)


SMALL_SETTINGS: dict[str, Any] = {
    "report_interval": 1,
    "service_down_time": 5,
    "backend_stats_polling_interval": 3,
    "periodic_interval": 2,
    "init_timeout": 3,
    "backup_initialization_timeout": 3,
}

HOSTS: dict[Binary, str] = {"volume": "node1@lvm", "backup": "node1"}


@dataclass
class Rig:
    """One virtual-time engine with its sink, store and the scripted drivers of its services."""

    engine: Engine
    sink: MemorySink
    store: BlockingStore
    settings: Settings
    drivers: dict[Binary, ScriptedDriver] = field(default_factory=dict)
    options: dict[Binary, Mapping[str, Any] | None] = field(default_factory=dict)

    @classmethod
    def build(cls, **settings: Any) -> Rig:
        sink, store, values = MemorySink(), BlockingStore(), Settings(**{**SMALL_SETTINGS, **settings})
        engine = Engine.virtual_time(sinks=[sink], store=store, settings=values)
        return cls(engine=engine, sink=sink, store=store, settings=values)

    def at(self, seconds: float) -> datetime:
        """The instant ``seconds`` after the first engine started (a restarted engine keeps the timeline)."""
        return DEFAULT_VIRTUAL_START + timedelta(seconds=seconds)

    def add(self, binary: Binary, driver: ScriptedDriver, options: Mapping[str, Any] | None = None) -> str:
        assert isinstance(self.engine.clock, VirtualClock)
        driver.clock = self.engine.clock
        self.drivers[binary], self.options[binary] = driver, options
        return self.engine.add_service(HOSTS[binary], binary, driver, options=options)

    def crash_and_restart(self) -> None:
        """The process dies (no shutdown); a new engine on the same store and sink adopts the services."""
        self.engine = Engine.virtual_time(
            self.engine.now(), sinks=[self.sink], store=self.store, settings=self.settings
        )
        for binary, driver in list(self.drivers.items()):
            self.add(binary, driver, self.options[binary])
        self.engine.start()

    def sid(self, binary: Binary) -> str:
        return f"{binary}/{HOSTS[binary]}"

    def row(self, binary: Binary) -> Any:
        return self.engine.service(HOSTS[binary], binary=binary)

    def envelopes(self, binary: Binary) -> list[Mapping[str, Any]]:
        publisher = f"{binary}.{HOSTS[binary]}"
        return [e for e in self.sink.envelopes if e["publisher_id"] == publisher]

    def job_ids(self, binary: Binary) -> set[str]:
        """The kinds of job armed for one service (``retry``, ``expire``, ...), group jobs left out."""
        suffix = f"|{self.sid(binary)}"
        return {job_id.split("|", 1)[0] for job_id, _ in self.engine.jobs() if job_id.endswith(suffix)}

    def block_heartbeats(self, binary: Binary, blocked: bool = True) -> None:
        (self.store.blocked.add if blocked else self.store.blocked.discard)(self.sid(binary))

    def snapshot(self, binary: Binary) -> tuple[Any, ...]:
        """Everything a rejected event must leave untouched."""
        return (
            self.row(binary).model_dump(),
            self.engine.jobs(),
            list(self.sink.envelopes),
            self.engine.history(),
            self.engine.now(),
            self.engine.deadline(HOSTS[binary], binary=binary),
            self.store.load(self.sid(binary)),
        )


def seconds_since_start(engine: Engine, moment: datetime | None) -> float | None:
    assert isinstance(engine.clock, VirtualClock)
    return None if moment is None else (moment - engine.clock.start).total_seconds()


def event_types(envelopes: Iterable[Mapping[str, Any]]) -> list[str]:
    return [e["event_type"] for e in envelopes]
