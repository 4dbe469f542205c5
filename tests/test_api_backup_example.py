"""examples/backup_endpoint.py: backups placed with statecore, in virtual time, over HTTP."""

from __future__ import annotations

import pytest
from api_support import ADMIN, SECRET, SERVICES, USER, LeakyDriver
from fastapi.testclient import TestClient
from support import Harness
from test_examples import load_example

example = load_example("backup_endpoint")


@pytest.fixture
def site():
    """Two backup services (node1, node2) that come up, and one whose driver never loads (node9)."""
    harness = Harness(backup_periodic_initialization=True, periodic_interval=5)
    drivers = {host: harness.add(host, "backup", harness.driver("ok")) for host in ("node1", "node2")}
    harness.engine.add_service("node9", "backup", LeakyDriver, zone="az9")
    harness.engine.start()
    harness.engine.advance(1)
    return harness, drivers, TestClient(example.BackupApi(harness.engine, example.example_policy()).app)


def create(api, volume_id: str = "vol-1", **body: str) -> dict:
    response = api.post("/backups", json={"volume_id": volume_id, **body}, headers=USER)
    assert response.status_code == 202, response.text
    return response.json()["backup"]


def stop(harness: Harness, drivers: dict, *hosts: str) -> None:
    """The driver stops working: the capabilities job notices, and the service is no longer up."""
    for host in hosts:
        drivers[host].working = False
    harness.engine.advance(6)


def test_a_backup_goes_to_a_backup_service_that_is_up(site):
    _, _, api = site
    backup = create(api)
    assert (backup["status"], backup["availability_zone"], backup["fail_reason"]) == ("available", "nova", None)
    assert "service" not in backup and "host" not in backup  # the backup host is admin-only information


def test_with_every_backup_service_down_a_backup_fails_and_stays_deletable(site):
    harness, drivers, api = site
    stop(harness, drivers, "node1", "node2")
    backup = create(api)
    assert (backup["status"], backup["fail_reason"]) == ("error", "Service not found for creating backup.")
    assert api.delete(f"/backups/{backup['id']}", headers=USER).status_code == 202
    assert api.get(f"/backups/{backup['id']}", headers=USER).status_code == 404


def test_deleting_a_backup_whose_service_is_down_is_503_backup_service_is_down(site):
    harness, drivers, api = site
    backup = create(api)
    stop(harness, drivers, "node1", "node2")
    response = api.delete(f"/backups/{backup['id']}", headers=USER)
    assert response.status_code == 503
    assert response.json() == {"serviceUnavailable": {"code": 503, "message": "Backup service is down."}}
    assert "node1" not in response.text and "node2" not in response.text


def test_a_zone_whose_only_backup_service_failed_gets_no_service_and_no_driver_text(site):
    _, _, api = site
    response = api.post("/backups", json={"volume_id": "v", "zone": "az9"}, headers=USER)
    assert response.json()["backup"]["fail_reason"] == "Service not found for creating backup."
    assert SECRET not in response.text


def test_backups_need_a_valid_token_and_the_mounted_service_list_stays_admin_only(site):
    _, _, api = site
    assert api.post("/backups", json={"volume_id": "v"}).status_code == 401
    assert api.get(SERVICES, headers=USER).status_code == 403
    hosts = {row["host"] for row in api.get(SERVICES, headers=ADMIN).json()["services"]}
    assert hosts == {"node1", "node2", "node9"}


def test_an_unknown_backup_is_404_in_cinders_shape(site):
    _, _, api = site
    response = api.delete("/backups/nope", headers=USER)
    assert response.json() == {"itemNotFound": {"code": 404, "message": "Backup nope could not be found."}}
