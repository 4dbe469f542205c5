"""A small backup API that places backups with statecore, with statecore's service list beside it.

``POST /backups`` picks a backup host among the services that are up, enabled and in the zone
(``statecore.placement``); when none can take it, the backup is recorded in ``error`` with no
service, as Cinder does, and stays deletable while every backup service is down.
``DELETE /backups/{id}`` of a backup a service took needs that service up: 503 with Cinder's
user message "Backup service is down." otherwise. Any valid token may use /backups; the
service list (mounted from ``statecore.api``) stays admin-only. Errors are Cinder faults, and
an end user never sees a driver's error text or a host name. Run it for real with:

    python examples/backup_endpoint.py /tmp/backup-share     # then: mkdir /tmp/backup-share

and, from another shell (tokens "admin-token" and "user-token"):

    curl -s -H 'X-Auth-Token: user-token' --json '{"volume_id": "v1"}' localhost:8777/backups
    curl -s -H 'X-Auth-Token: admin-token' -H 'OpenStack-API-Version: volume 3.49' localhost:8777/v3/p/os-services
"""

from __future__ import annotations

import sys
import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Header
from pydantic import BaseModel, ConfigDict, Field

from statecore import Engine, Settings
from statecore.api import ApiFault, EngineSource, Policy, StaticTokenPolicy, create_app, install_fault_handlers
from statecore.api.policy import roles_of
from statecore.drivers_builtin.posix import PosixBackupDriver
from statecore.placement import BackupRecord, create_backup, delete_backup

Token = Annotated[str | None, Header(alias="X-Auth-Token")]


class NewBackup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    volume_id: str = Field(min_length=1, max_length=255)
    zone: str = "nova"
    volume_host: str | None = Field(default=None, description="the volume's host@backend, for same_host")


class BackupApi:
    """The embedding service: its own backups, statecore's engine for where they may go."""

    def __init__(self, engine: Engine, policy: Policy, *, same_host: bool = False) -> None:
        self.engine, self.policy, self.same_host = engine, policy, same_host
        self.backups: dict[str, BackupRecord] = {}
        self.app = FastAPI(title="backup example", docs_url=None, redoc_url=None)
        install_fault_handlers(self.app)
        self.app.post("/backups", status_code=202)(self.create)
        self.app.get("/backups/{backup_id}")(self.show)
        self.app.delete("/backups/{backup_id}", status_code=202)(self.delete)
        self.app.mount("/", create_app(EngineSource(engine), policy))  # last: /backups wins over the mount

    def create(self, body: NewBackup, token: Token = None) -> dict[str, Any]:
        roles_of(self.policy, token)
        record = create_backup(
            self.engine.service_list(admin=False), backup_id=str(uuid.uuid4()), volume_id=body.volume_id,
            zone=body.zone, volume_host=body.volume_host, same_host=self.same_host,
        )  # fmt: skip
        if record.status == "creating":  # no data moves in this example: the backup is done at once
            record = BackupRecord(record.id, record.volume_id, record.zone, "available", record.service)
        self.backups[record.id] = record
        return {"backup": view(record)}

    def show(self, backup_id: str, token: Token = None) -> dict[str, Any]:
        roles_of(self.policy, token)
        return {"backup": view(self._find(backup_id))}

    def delete(self, backup_id: str, token: Token = None) -> None:
        roles_of(self.policy, token)
        delete_backup(self._find(backup_id), self.engine.service_list(admin=False))
        del self.backups[backup_id]

    def _find(self, backup_id: str) -> BackupRecord:
        if backup_id not in self.backups:
            raise ApiFault(404, f"Backup {backup_id} could not be found.")
        return self.backups[backup_id]


def view(record: BackupRecord) -> dict[str, Any]:
    """What the end user sees: Cinder's fields; the backup host is admin-only in Cinder, so it is left out."""
    return {"id": record.id, "volume_id": record.volume_id, "availability_zone": record.zone,
            "status": record.status, "fail_reason": record.fail_reason}  # fmt: skip


def example_policy() -> StaticTokenPolicy:
    """Two fixed tokens; a real service would ask its identity service."""
    return StaticTokenPolicy("admin-token", {"user-token": {"member"}})


def main(share: str, port: int = 8777) -> None:
    import uvicorn

    engine = Engine(Settings(backup_periodic_initialization=True, periodic_interval=5))
    engine.add_service("node1", "backup", PosixBackupDriver, driver_options={"path": share})
    with engine:
        uvicorn.run(BackupApi(engine, example_policy()).app, host="127.0.0.1", port=port)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/backup-share")
