"""statecore's rows and records as Cinder's API shows them, per microversion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from statecore.api.microversion import BACKEND_STATE, CLUSTER, Version
from statecore.records import ServiceRow, TransitionRecord, iso
from statecore.table import Binary

CINDER_BINARY: dict[str, str] = {"volume": "cinder-volume", "backup": "cinder-backup"}
BINARY_OF: dict[str, Binary] = {"cinder-volume": "volume", "cinder-backup": "backup"}


def cinder_time(moment: datetime | None) -> str | None:
    """Cinder's ``updated_at``: UTC without a zone designator, microseconds kept
    (``2026-08-01T12:00:00.000000``), what oslo's JSON encoder makes of a normalized time."""
    text = iso(moment)
    return None if text is None else text[:-1]


def service_view(row: ServiceRow, version: Version) -> dict[str, Any]:
    """One ``os-services`` row: Cinder's fields for that version, then statecore's lifecycle fields."""
    view: dict[str, Any] = {
        "binary": CINDER_BINARY[row.binary],
        "host": row.host,
        "zone": row.zone,
        "status": row.status,
        "state": row.state,
        "updated_at": cinder_time(row.updated_at),
        "disabled_reason": row.disabled_reason,
    }
    if version >= CLUSTER:
        view["cluster"] = None
    if version >= BACKEND_STATE and row.binary == "volume":
        view["backend_state"] = row.backend_state
    view.update(
        lifecycle=row.lifecycle.value,
        attempts=row.attempts,
        total_attempts=row.total_attempts,
        retries_left=row.retries_left,
        next_retry_at=cinder_time(row.next_retry_at),
        last_error=row.last_error,
    )
    return view


def status_view(row: ServiceRow) -> dict[str, Any]:
    """The answer to enable / disable, in Cinder's shape."""
    return {
        "host": row.host,
        "binary": CINDER_BINARY[row.binary],
        "status": row.status,
        "disabled": row.status == "disabled",
        "disabled_reason": row.disabled_reason,
    }


def reset_view(record: TransitionRecord) -> dict[str, Any]:
    """The answer to statecore's reset: the transition it made."""
    return {
        "host": record.host,
        "binary": CINDER_BINARY[record.binary],
        "event": record.event.value,
        "from_state": record.from_state.value,
        "to_state": record.to_state.value,
        "reason": record.reason,
        "at": cinder_time(record.at),
        "attempt": record.attempt,
        "retries_left": record.retries_left,
        "next_retry_at": cinder_time(record.next_retry_at),
    }
