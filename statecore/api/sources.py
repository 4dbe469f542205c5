"""Where the HTTP API gets its rows and sends its admin actions.

``EngineSource`` is for a service that embeds an engine: rows from ``engine.service_list()``
and actions through the engine, so they are checked against the table, stored, audited and
notified like any other. ``StoreSource`` is for ``statecore serve``, a process with no engine:
rows from ``store.fleet()`` (every host sharing the store, liveness by database clock) and
disable/enable straight into the store, which the owning engine picks up at its next report.
A reset is a transition, and only the engine that runs the service can make one (the driver
must be set up in that process), so ``StoreSource`` refuses it with 409 and names that host.
"""

from __future__ import annotations

from typing import Protocol

from statecore.engine import Engine
from statecore.errors import InvalidTransition, UnknownService
from statecore.records import ServiceRow, TransitionRecord
from statecore.store import Store, service_id
from statecore.table import Binary, Event


class Source(Protocol):
    def rows(self, *, host: str | None = None, binary: Binary | None = None) -> list[ServiceRow]:
        """Admin rows (with ``last_error`` and ``backend_state``), filtered by host and binary."""
        ...

    def disable(self, host: str, binary: Binary, reason: str) -> ServiceRow:
        """Keep the service from new work; UnknownService if there is none."""
        ...

    def enable(self, host: str, binary: Binary) -> ServiceRow:
        """Let it take new work again; UnknownService if there is none."""
        ...

    def reset(self, host: str, binary: Binary, reason: str) -> TransitionRecord:
        """Send ``reset``; InvalidTransition where it is not allowed."""
        ...


class EngineSource:
    """An embedded engine's own services."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def rows(self, *, host: str | None = None, binary: Binary | None = None) -> list[ServiceRow]:
        return self.engine.service_list(admin=True, binary=binary, host=host)

    def disable(self, host: str, binary: Binary, reason: str) -> ServiceRow:
        return self.engine.disable(host, reason, binary=binary)

    def enable(self, host: str, binary: Binary) -> ServiceRow:
        return self.engine.enable(host, binary=binary)

    def reset(self, host: str, binary: Binary, reason: str) -> TransitionRecord:
        return self.engine.reset(host, binary=binary, reason=reason)


class StoreSource:
    """Every service in a store, for a server that runs no engine."""

    def __init__(self, store: Store, service_down_time: float | None = None) -> None:
        """``service_down_time``: one window for every row; None, the one each row's engine stored."""
        self.store = store
        self.service_down_time = service_down_time

    def rows(self, *, host: str | None = None, binary: Binary | None = None) -> list[ServiceRow]:
        return [
            row for row in self.store.fleet(self.service_down_time)
            if (host is None or row.host == host) and (binary is None or row.binary == binary)
        ]  # fmt: skip

    def disable(self, host: str, binary: Binary, reason: str) -> ServiceRow:
        return self._set_status(host, binary, True, reason)

    def enable(self, host: str, binary: Binary) -> ServiceRow:
        return self._set_status(host, binary, False, None)

    def reset(self, host: str, binary: Binary, reason: str) -> TransitionRecord:
        stored = self.store.load(service_id(binary, host))
        if stored is None:
            raise UnknownService(f"no {binary} service {host!r} is registered")
        raise InvalidTransition(
            host, binary, stored.lifecycle.value, Event.RESET.value,
            f"this server only reads the store; reset it through the engine that runs it, on {stored.owner!r}",
        )  # fmt: skip

    def _set_status(self, host: str, binary: Binary, disabled: bool, reason: str | None) -> ServiceRow:
        if not self.store.set_status(service_id(binary, host), disabled, reason):
            raise UnknownService(f"no {binary} service {host!r} is registered")
        return self.rows(host=host, binary=binary)[0]
