"""statecore's rows and records as Cinder's API shows them, per microversion.

Key for key and in Cinder's order (``cinder/api/v3/services.py``, ``index``, with the
``os-extended-services`` fields a default Cinder loads): a client or a schema that knows Cinder's
body (tempest's ``additionalProperties: false``) meets nothing else. statecore's own lifecycle fields
are added only on request (``with_lifecycle``, see docs/api.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from statecore.api.microversion import BACKEND_STATE, CLUSTER, MAX_VERSION, MIN_VERSION, UPDATED, Version
from statecore.api.schemas import ServiceRef
from statecore.records import ServiceRow, TransitionRecord, iso
from statecore.table import CINDER_BINARY

NOT_CAPABLE = "not-capable"
"""Cinder's ``replication_status`` for a backend without replication (its column's default)."""
DESCRIBED_BY = {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}


def cinder_time(moment: datetime | None) -> str | None:
    """Cinder's ``updated_at``: UTC without a zone designator, microseconds kept
    (``2026-08-01T12:00:00.000000``), what oslo's JSON encoder makes of a normalized time."""
    text = iso(moment)
    return None if text is None else text[:-1]


def service_view(row: ServiceRow, version: Version, *, lifecycle: bool = False) -> dict[str, Any]:
    """One ``os-services`` row, exactly Cinder's for that version; ``lifecycle`` adds statecore's fields."""
    view: dict[str, Any] = {
        "binary": CINDER_BINARY[row.binary],
        "host": row.host,
        "zone": row.zone,
        "status": row.status,
        "state": row.state,
        "updated_at": cinder_time(row.updated_at),
    }
    volume = row.binary == "volume"
    if version >= BACKEND_STATE and volume:
        view["backend_state"] = backend_state(row)
    if version >= CLUSTER:
        view["cluster"] = None
    view["disabled_reason"] = row.disabled_reason
    if volume:
        view.update(replication_status=NOT_CAPABLE, active_backend_id=None, frozen=False)
    if lifecycle:
        view.update(lifecycle_view(row))
    return view


def backend_state(row: ServiceRow) -> str:
    """Always a string, as tempest's schema wants: an up volume's polled value, or Cinder's default
    ``up`` for a backend that reports none yet; ``down`` for a volume that is not up (Cinder's
    scheduler drops the pools of a down service and would send null)."""
    if row.state != "up":
        return "down"
    return row.backend_state or "up"


def lifecycle_view(row: ServiceRow) -> dict[str, Any]:
    """statecore's own fields of a row: what Cinder's list has no words for."""
    return {
        "lifecycle": row.lifecycle.value,
        "attempts": row.attempts,
        "total_attempts": row.total_attempts,
        "retries_left": row.retries_left,
        "next_retry_at": cinder_time(row.next_retry_at),
        "last_error": row.last_error,
    }


def status_view(body: ServiceRef, row: ServiceRow, **reason: str | None) -> dict[str, Any]:
    """The answer to enable / disable / disable-log-reason, as Cinder builds it: ``host``, ``service``
    and ``binary`` echo the request (``""`` where it had none), then the new status; ``reason``
    (``disabled_reason=...``) where Cinder's answer has one: enable (null) and disable-log-reason."""
    view = {"host": body.host, "service": body.service or "", "binary": body.binary or ""}
    return {**view, "status": row.status, "disabled": row.status == "disabled", **reason}


def versions_view(base_url: str) -> dict[str, Any]:
    """Cinder's version document (``cinder/api/versions.py``), the same at ``/`` and ``/v3/``."""
    links = [DESCRIBED_BY, {"rel": "self", "href": f"{base_url.rstrip('/')}/v3/"}]
    version = {
        "id": "v3.0",
        "status": "CURRENT",
        "version": str(MAX_VERSION),
        "min_version": str(MIN_VERSION),
        "updated": UPDATED,
        "links": links,
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    }
    return {"versions": [version]}


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
