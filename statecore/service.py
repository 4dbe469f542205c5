"""One supervised service: a small record, not a machine (the machine is shared per binary).

Its mutable fields can be snapshotted and restored, so a transition whose
store write fails leaves the service exactly as it was; and converted to and
from the stored ``ServiceState``, so a new engine adopts a dead one's services.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from operator import attrgetter
from typing import Any, NamedTuple

from statecore.drivers import Driver, DriverSpec, load_driver
from statecore.errors import StatecoreError
from statecore.guards import retries_left
from statecore.records import ErrorInfo, ServiceRow
from statecore.settings import Settings
from statecore.store.base import ServiceState, service_id
from statecore.table import Binary, State

MUTABLE = (
    "state", "fsm_state", "attempt", "total_attempts", "initialized", "last_ok", "updated_at",
    "next_retry_at", "last_delay", "last_error", "backend_state", "retry_token", "attempt_token", "disabled",
    "disabled_reason",
)  # fmt: skip


_SNAPSHOT = attrgetter(*MUTABLE)


class ServiceSpec(NamedTuple):
    """What ``Engine.add_services`` registers: ``add_service``'s arguments, as a value."""

    host: str
    binary: Binary
    driver: DriverSpec
    zone: str = "nova"
    options: Mapping[str, Any] | None = None
    driver_options: Mapping[str, Any] | None = None


class Missing(Enum):
    MISSING = "missing"


MISSING = Missing.MISSING
"""Not given (``None`` is a value of ``retries_left``: no limit)."""


class Service:
    __slots__ = (
        *MUTABLE, "id", "host", "binary", "zone", "settings", "driver_spec", "driver_options", "driver",
        "load_error", "generation", "pinned",
    )  # fmt: skip

    def __init__(
        self,
        host: str,
        binary: Binary,
        zone: str,
        settings: Settings,
        driver: DriverSpec,
        driver_options: Mapping[str, Any] | None,
        registered_at: datetime,
    ) -> None:
        self.id = service_id(binary, host)
        self.host, self.binary, self.zone, self.settings = host, binary, zone, settings
        self.driver_spec, self.driver_options = driver, driver_options
        self.driver: Driver | None = None
        self.load_error: BaseException | None = None
        self.state = State.STARTING
        self.fsm_state = State.STARTING.value
        self.attempt = self.total_attempts = 0
        self.initialized = False
        self.last_ok = registered_at
        self.updated_at: datetime | None = None
        self.next_retry_at: datetime | None = None
        self.last_delay: float | None = None
        self.last_error: ErrorInfo | None = None
        self.disabled = False
        self.disabled_reason: str | None = None
        self.backend_state: str | None = None
        self.retry_token = self.attempt_token = 0
        self.generation = 0
        """The fencing token of this engine's claim on the service (``Store.claim``)."""
        self.pinned = False
        """Its last step is being written to the store, the engine lock released (ledger.py)."""

    def snapshot(self) -> tuple[Any, ...]:
        """Taken before every transition, in case its commit fails: one C call, not a loop."""
        return _SNAPSHOT(self)

    def restore(self, snapshot: tuple[Any, ...]) -> None:
        for name, value in zip(MUTABLE, snapshot, strict=True):
            setattr(self, name, value)

    def load_driver(self) -> StatecoreError | None:
        """Import and build the driver; a failure is kept (an attempt re-raises it) and returned."""
        try:
            self.driver = load_driver(self.driver_spec, self.driver_options, self.settings.enable_unsupported_driver)
        except StatecoreError as failure:
            self.load_error = failure
            return failure
        self.load_error = None
        return None

    def deadline(self) -> datetime:
        """When ``heartbeat_expired`` is due: ``last_ok + service_down_time`` (BEHAVIOR.md section 5)."""
        return self.last_ok + self.settings.down_window

    def retries_left(self) -> int | None:
        return retries_left(self.binary, self.settings, self.attempt)

    def stored(self, owner: str, retries_left: int | Missing | None = MISSING) -> ServiceState:
        """What the store keeps; positional, in ``ServiceState``'s field order, since every transition
        builds one (keywords cost three times as much). ``retries_left`` if the caller has it already."""
        error = self.last_error
        return ServiceState(
            self.host, self.binary, self.zone, owner, self.state, self.disabled, self.disabled_reason,
            self.initialized, self.last_ok, self.updated_at, self.attempt, self.total_attempts,
            self.retries_left() if retries_left is MISSING else retries_left, self.last_delay, self.next_retry_at,
            error.type if error else None, error.message if error else None, self.backend_state, self.generation,
            self.settings.service_down_time,
        )  # fmt: skip

    def row(self, owner: str, *, admin: bool) -> ServiceRow:
        """Its service-list row as the record stands, alive while ``up`` (the owning engine's verdict)."""
        return self.stored(owner).row(alive=self.state is State.UP, admin=admin)

    def adopt(self, stored: ServiceState) -> None:
        """Take over a stored state: counters carry on, timers are re-derived by the engine."""
        self.state, self.fsm_state = stored.lifecycle, stored.lifecycle.value
        self.zone, self.disabled, self.disabled_reason = stored.zone, stored.disabled, stored.disabled_reason
        self.initialized, self.last_ok, self.updated_at = stored.initialized, stored.last_ok, stored.updated_at
        self.attempt, self.total_attempts = stored.attempt, stored.total_attempts
        self.last_delay, self.next_retry_at = stored.last_delay, stored.next_retry_at
        self.backend_state = stored.backend_state
        error = stored.last_error_type
        self.last_error = ErrorInfo(error, stored.last_error_message or "") if error else None
