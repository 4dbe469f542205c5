"""Where new backup work goes, and which operations a down service blocks (BEHAVIOR.md section 9).

Pure functions over ``ServiceRow``s, so they work the same on ``engine.service_list()`` (one
engine's services) and ``store.fleet(...)`` (every host sharing the store). The messages are
Cinder's user messages, meant for the end user: they name no host, because host names are
admin-only information in Cinder's API; the host is on the exception for admins and logs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from statecore.errors import InvalidBackup, NoServiceAvailable, ServiceUnavailable, UnknownService
from statecore.records import ServiceRow
from statecore.table import Binary

__all__ = [
    "BACKUP_SERVICE_DOWN",
    "NO_BACKUP_SERVICE",
    "BackupRecord",
    "InvalidBackup",
    "NoServiceAvailable",
    "ServiceUnavailable",
    "backup_candidates",
    "create_backup",
    "delete_backup",
    "pick_backup_host",
    "require_up",
]

BACKUP_SERVICE_DOWN = "Backup service is down."
"""Cinder's user message 018."""
NO_BACKUP_SERVICE = "Service not found for creating backup."
"""Cinder's user message 024."""
DOWN_MESSAGES: dict[str, tuple[str, str | None]] = {
    "backup": (BACKUP_SERVICE_DOWN, "018"),
    "volume": ("Volume service is down.", None),  # Cinder has no user message for it; same wording
}


def backup_candidates(
    rows: Iterable[ServiceRow], zone: str, *, volume_host: str | None = None, same_host: bool = False
) -> list[ServiceRow]:
    """Backup services that may take a new backup: ``up``, enabled, in ``zone``; with ``same_host``
    only the volume's own host (Cinder's ``backup_use_same_host``), sorted by host."""
    wanted = host_of(volume_host) if same_host and volume_host else None
    return sorted(
        (
            row for row in rows
            if row.binary == "backup" and row.state == "up" and row.status == "enabled" and row.zone == zone
            and (wanted is None or row.host == wanted)
        ),
        key=lambda row: row.host,
    )  # fmt: skip


def pick_backup_host(
    rows: Iterable[ServiceRow],
    zone: str,
    *,
    volume_host: str | None = None,
    same_host: bool = False,
    key: str = "",
) -> str:
    """The backup host for new work, or ``NoServiceAvailable`` (Cinder's message 024).

    Deterministic by rendezvous hashing on ``key`` (pass the volume id): the candidate whose
    ``sha256(key|host)`` is highest wins. Cinder shuffles at random; a hash gives the same answer
    for the same fleet (reproducible in tests and virtual time), spreads different volumes over
    the hosts, keeps one volume's backups on one host while it stays up, and when a host goes
    away moves only the volumes that were on it. Round-robin would need a counter shared by every
    API worker; taking the first host by name would send every backup to one host.
    """
    candidates = backup_candidates(rows, zone, volume_host=volume_host, same_host=same_host)
    if not candidates:
        raise NoServiceAvailable(NO_BACKUP_SERVICE)
    return max(candidates, key=lambda row: hashlib.sha256(f"{key}|{row.host}".encode()).digest()).host


def require_up(rows: Iterable[ServiceRow], host: str, binary: Binary) -> ServiceRow:
    """The row of that service if it is ``up``; ``ServiceUnavailable`` if it is not (fail fast),
    ``UnknownService`` if there is no such service."""
    row = next((r for r in rows if r.host == host and r.binary == binary), None)
    if row is None:
        raise UnknownService(f"no {binary} service {host!r} is registered")
    if row.state != "up":
        message, message_id = DOWN_MESSAGES[binary]
        raise ServiceUnavailable(message, host=host, binary=binary, message_id=message_id)
    return row


def host_of(volume_host: str) -> str:
    """``node1@lvm#pool`` → ``node1``: the host part, as Cinder's ``extract_host(..., 'host')``."""
    return volume_host.split("#", 1)[0].split("@", 1)[0]


BackupStatus = Literal["creating", "available", "error", "deleted"]


@dataclass(frozen=True, slots=True)
class BackupRecord:
    """A backup as the embedding service keeps it; ``service`` is the backup host that took it.

    ``service`` is None when the backup failed before any backup service took it: then no
    backup service holds anything of it, and deleting it needs none (Cinder behaves the same).
    """

    id: str
    volume_id: str
    zone: str
    status: BackupStatus
    service: str | None = None
    fail_reason: str | None = None


def create_backup(
    rows: Iterable[ServiceRow],
    *,
    backup_id: str,
    volume_id: str,
    zone: str,
    volume_host: str | None = None,
    same_host: bool = False,
) -> BackupRecord:
    """A new backup: ``creating`` on the picked host, or ``error`` with no ``service`` when none can
    take it, carrying the user message as ``fail_reason`` (Cinder records the backup, then fails it)."""
    try:
        host = pick_backup_host(rows, zone, volume_host=volume_host, same_host=same_host, key=volume_id)
    except NoServiceAvailable as error:
        return BackupRecord(backup_id, volume_id, zone, "error", None, str(error))
    return BackupRecord(backup_id, volume_id, zone, "creating", host)


def delete_backup(record: BackupRecord, rows: Iterable[ServiceRow]) -> BackupRecord:
    """The backup, deleted. A backup some service took needs that service up (``ServiceUnavailable``,
    message 018); one that failed before any service took it is deletable while every backup
    service is down. Only ``available`` and ``error`` backups can be deleted, as in Cinder."""
    if record.status not in ("available", "error"):
        raise InvalidBackup(f"Backup status must be available or error, but is {record.status}.")
    if record.service is not None:
        require_up(rows, record.service, "backup")
    return dataclasses.replace(record, status="deleted")
