"""What operators read: the service table, and the live screen of ``statecore run``.

The live screen is for a fleet, not a handful: a summary line (how many services
are in each state), then the services that need attention, worst first (failed
for good, down, retrying, starting, up with the backend down, disabled), as
many as fit. A small fleet is listed whole. It is drawn only when what it shows
has changed, at most once per refresh period: with 10,000 healthy services it
reads the service records once a period and draws nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from statecore.engine import Engine
from statecore.records import ServiceRow, iso
from statecore.service import Service
from statecore.table import CINDER_BINARY, State

CINDER_COLUMNS = ("Binary", "Host", "Zone", "Status", "State", "Updated_at", "Cluster", "Disabled Reason",
                  "Backend State")  # fmt: skip
"""``cinder service-list`` at 3.49, in its order (cinderclient's ``do_service_list``)."""
OWN_COLUMNS = ("Lifecycle", "Attempts", "Next Retry", "Last Error")
"""What statecore knows besides, after Cinder's columns so a Cinder operator reads the table as usual."""
COLUMNS = CINDER_COLUMNS + OWN_COLUMNS
SEVERITY = {
    State.FAILED_PERMANENT: 0, State.DOWN: 1, State.FAILED_RECOVERABLE: 2, State.INITIALIZING: 3,
    State.STARTING: 4, State.UP: 5,
}  # fmt: skip
"""Worst first: the order in which the live screen lists services that need attention."""


def cinder_row(row: ServiceRow) -> dict[str, Any]:
    """A service-list row as JSON: Cinder's fields with Cinder's values (``cinder-volume``, a
    ``cluster`` statecore does not have), then statecore's own."""
    fields = row.model_dump(mode="json")
    return {**fields, "binary": CINDER_BINARY[row.binary], "cluster": None}


def service_table(rows: list[ServiceRow], title: str = "services") -> Table:
    """The service list as operators read it; shared by every command that shows services. Empty
    cells say ``-``, as cinderclient prints them."""
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        cells = (
            CINDER_BINARY[row.binary], row.host, row.zone, row.status, row.state, iso(row.updated_at), None,
            row.disabled_reason, row.backend_state, row.lifecycle.value, str(row.total_attempts),
            iso(row.next_retry_at), row.last_error,
        )  # fmt: skip
        table.add_row(*(escape(cell or "-") for cell in cells))  # error text may hold [brackets]
    return table


def needs_attention(service: Service) -> bool:
    return service.state is not State.UP or service.disabled or service.backend_state == "down"


class LiveView:
    """The live screen of one engine; ``rows``: how many services it lists at most."""

    def __init__(self, engine: Engine, rows: int = 20) -> None:
        self.engine = engine
        self.rows = rows
        self._shown: Hashable = None

    def changed(self) -> RenderableType | None:
        """The screen, if it differs from the one last returned; else None (nothing to draw).

        It reads the service records without the engine lock, as a glance: a row may be one
        transition behind for one period, or show a step whose commit is still in progress; the
        engine never waits for the screen, and the screen never waits behind a commit (a hung
        store would freeze it)."""
        services = list(self.engine.registry.services.values())
        counts = Counter(service.state for service in services)
        if len(services) <= self.rows:
            listed = sorted(services, key=_worst_first)
        else:
            listed = sorted((s for s in services if needs_attention(s)), key=_worst_first)
        shown = (
            tuple(sorted(counts.items())), sum(s.disabled for s in services), len(listed),
            tuple(_looks(service) for service in listed[: self.rows]), len(self.engine.leases.waiting),
        )  # fmt: skip
        if shown == self._shown:
            return None
        self._shown = shown
        return self._render(services, counts, listed)

    def _render(self, services: list[Service], counts: Counter[State], listed: list[Service]) -> RenderableType:
        summary = ", ".join(f"{counts[state]} {state.value}" for state in SEVERITY if counts[state])
        disabled = sum(service.disabled for service in services)
        head = f"{len(services)} services: {summary}" + (f"; {disabled} disabled" if disabled else "")
        if waiting := len(self.engine.leases.waiting):  # another engine drives them: leases.py
            head += f"; standby for {waiting} driven by another engine"
        rows = [service.row(self.engine.owner, admin=True) for service in listed[: self.rows]]
        title = f"services of {self.engine.owner} (Ctrl-C stops)"
        if len(services) > self.rows:
            title = f"needing attention, worst first: {len(listed)} of {len(services)} services (Ctrl-C stops)"
        parts: list[RenderableType] = [Text(head), service_table(rows, title=title)]
        if len(listed) > self.rows:
            parts.append(Text(f"... and {len(listed) - self.rows} more needing attention"))
        return Group(*parts)


def _worst_first(service: Service) -> tuple[int, bool, bool, str, str]:
    return SEVERITY[service.state], service.backend_state != "down", not service.disabled, service.host, service.binary


def _looks(service: Service) -> Hashable:
    """What a listed row shows that can change (``updated_at`` included: heartbeats move it)."""
    return (
        service.host, service.binary, service.state, service.disabled, service.backend_state, service.total_attempts,
        service.next_retry_at, service.updated_at, service.last_error,
    )  # fmt: skip
