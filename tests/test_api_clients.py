"""The clients an OpenStack operator already has, against a live `statecore serve` (no Keystone:
the admin token): python-cinderclient's Python API and its `cinder` CLI, openstacksdk's version
discovery and services, and every answer checked against tempest's published response schemas
through tempest's own ServicesClient and VersionsClient, at 3.0, 3.48 and 3.49, on endpoints
with and without a project id."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openstack
import pytest
from api_support import free_port, serve, stop, wait_until_serving
from cinderclient import client as cinder_client
from keystoneauth1 import session, token_endpoint
from support import Harness
from tempest.lib.exceptions import InvalidHTTPResponseBody
from tempest.lib.services.volume import base_client
from tempest.lib.services.volume.v3.services_client import ServicesClient
from tempest.lib.services.volume.v3.versions_client import VersionsClient

from statecore.store import open_store

TOKEN = "operator-token"
PROJECT = "9a5c2c1e0b7d4d35a5b5f6a7c3e1d2f0"
VERSIONS = ["3.0", "3.48", "3.49"]
UP = {("cinder-volume", "node1@lvm"), ("cinder-backup", "node1"), ("cinder-backup", "node3")}
DOWN = {("cinder-volume", "node2@array"), ("cinder-volume", "node4@nfs")}
"""node2@array failed for good (a configuration error), node4@nfs failing and retrying: neither has
ever reported, so Cinder's nullable fields (updated_at, backend_state) meet tempest's schema there."""
HOSTS = UP | DOWN
TIMEOUT = 10.0
"""Every client call is bounded: a server that stops answering fails the test, never hangs it."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`statecore serve` on a free loopback port over a store an engine wrote just now (heartbeats
    fresh on the database's clock), stopped at the end; its root URL."""
    root = tmp_path_factory.mktemp("clients")
    store = open_store(str(root / "state.sqlite"))
    harness = Harness(store=store, start=datetime.now(UTC))
    harness.add("node1@lvm", "volume", harness.driver("ok"))
    harness.add("node1", "backup", harness.driver("ok"))
    harness.engine.add_service("node3", "backup", harness.driver("ok"), zone="az2")
    harness.add("node2@array", "volume", harness.driver("config_error"))
    harness.add("node4@nfs", "volume", harness.driver("recoverable"))
    harness.engine.start()
    harness.engine.advance(30)
    store.close()
    (root / "token").write_text(TOKEN)
    port = free_port()
    served = serve(root / "serve.log", "--db", str(root / "state.sqlite"), "--port", str(port),
                   "--admin-token-file", str(root / "token"), "--service-down-time", "3600")  # fmt: skip
    try:
        wait_until_serving(served, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(served)


@pytest.fixture(params=["project-less", "with project"])
def endpoint(request: pytest.FixtureRequest, server: str) -> str:
    return f"{server}/v3" if request.param == "project-less" else f"{server}/v3/{PROJECT}"


def cinderclient(endpoint: str, version: str) -> Any:
    auth = session.Session(auth=token_endpoint.Token(endpoint, TOKEN), timeout=TIMEOUT)
    return cinder_client.Client(version, session=auth)


@pytest.mark.parametrize("version", VERSIONS)
def test_cinderclient_lists_services_with_the_fields_of_its_microversion(endpoint, version):
    services = cinderclient(endpoint, version).services.list()
    assert {(s.binary, s.host) for s in services} == HOSTS
    assert {(s.binary, s.host) for s in services if s.state == "up"} == UP
    assert all(s.status == "enabled" and s.updated_at for s in services)
    volume = next(s for s in services if s.host == "node1@lvm")
    assert (volume.replication_status, volume.frozen, volume.active_backend_id) == ("not-capable", False, None)
    assert hasattr(volume, "cluster") is (version != "3.0")
    assert getattr(volume, "backend_state", None) == ("up" if version == "3.49" else None)
    failed = next(s for s in services if s.host == "node2@array")
    assert getattr(failed, "backend_state", None) == ("down" if version == "3.49" else None)
    assert not any(hasattr(s, "lifecycle") for s in services)


def test_cinderclient_filters_disables_and_enables(endpoint):
    cinder = cinderclient(endpoint, "3.49")
    assert [s.host for s in cinder.services.list(binary="cinder-backup", host="node3")] == ["node3"]
    disabled = cinder.services.disable_log_reason("node3", "cinder-backup", "disk swap")
    assert (disabled.status, disabled.disabled_reason) == ("disabled", "disk swap")
    assert cinder.services.list(host="node3")[0].disabled_reason == "disk swap"
    assert cinder.services.enable("node3", "cinder-backup").status == "enabled"
    assert cinder.services.disable("node3", "cinder-backup").status == "disabled"
    assert cinder.services.enable("node3", "cinder-backup").status == "enabled"


def test_cinderclient_learns_the_servers_range(endpoint):
    [version] = cinderclient(endpoint, "3.0").services.server_api_version()
    assert (version.id, version.min_version, version.version) == ("v3.0", "3.0", "3.49")


def cinder_cli(endpoint: str, *args: str) -> str:
    """The `cinder` console script, with keystoneauth's admin_token plugin instead of Keystone."""
    command = [str(Path(sys.executable).with_name("cinder")), "--os-auth-type", "admin_token",
               "--os-endpoint", endpoint, "--os-project-id", PROJECT, *args]  # fmt: skip
    done = subprocess.run(command, env={"OS_TOKEN": TOKEN, "PATH": ""}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def cells(table: str) -> list[list[str]]:
    """The rows of a prettytable, header first, each as its stripped cells."""
    return [
        [cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")
    ]


@pytest.mark.parametrize(
    ("version", "columns"),
    [
        ("3.0", ["Binary", "Host", "Zone", "Status", "State", "Updated_at", "Disabled Reason"]),
        ("3.48", ["Binary", "Host", "Zone", "Status", "State", "Updated_at", "Cluster", "Disabled Reason"]),
        ("3.49", ["Binary", "Host", "Zone", "Status", "State", "Updated_at", "Cluster", "Disabled Reason",
                  "Backend State"]),
    ],
)  # fmt: skip
def test_the_cinder_cli_lists_services(endpoint, version, columns):
    header, *rows = cells(cinder_cli(endpoint, "--os-volume-api-version", version, "service-list"))
    assert header == columns
    shown = {(row[0], row[1]): dict(zip(header, row, strict=True)) for row in rows}
    assert set(shown) == HOSTS
    assert {key: row["State"] for key, row in shown.items()} == {key: "up" if key in UP else "down" for key in HOSTS}
    lvm, array = shown["cinder-volume", "node1@lvm"], shown["cinder-volume", "node2@array"]
    assert (lvm["Zone"], lvm["Status"], lvm["Disabled Reason"]) == ("nova", "enabled", "-")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", row["Updated_at"]) for row in shown.values())
    if "Backend State" in header:
        assert (lvm["Backend State"], array["Backend State"]) == ("up", "down")
        assert shown["cinder-backup", "node1"]["Backend State"] == ""  # no such field on a backup row


def test_the_cinder_cli_disables_with_a_reason_and_enables(endpoint):
    disabled = cinder_cli(endpoint, "--os-volume-api-version", "3.49", "service-disable", "--reason", "maintenance",
                          "node1", "cinder-backup")  # fmt: skip
    assert "disabled" in disabled and "maintenance" in disabled
    assert "enabled" in cinder_cli(endpoint, "service-enable", "node1", "cinder-backup")


def test_the_cinder_cli_reads_the_version_document(endpoint):
    table = cinder_cli(endpoint, "version-list")
    assert "v3.0" in table and "3.49" in table and "2017-09-19T20:18:14Z" in table


def sdk(endpoint: str, **auth: Any) -> openstack.connection.Connection:
    return openstack.connect(load_yaml_config=False, load_envvars=False, block_storage_endpoint_override=endpoint,
                             api_timeout=TIMEOUT, **auth)  # fmt: skip


def test_openstacksdk_discovers_the_microversion_range_without_auth(endpoint):
    data = sdk(endpoint, auth_type="none").block_storage.get_endpoint_data()
    assert (data.min_microversion, data.max_microversion) == ((3, 0), (3, 49))


def test_openstacksdk_lists_disables_and_enables_services(endpoint):
    storage = sdk(endpoint, auth_type="admin_token", auth={"endpoint": endpoint, "token": TOKEN}).block_storage
    services = list(storage.services())
    assert {(s.binary, s.host) for s in services} == HOSTS
    volume = next(s for s in services if s.host == "node1@lvm")
    assert (volume.replication_status, volume.is_frozen) == ("not-capable", False)
    node3 = next(s for s in services if s.host == "node3")
    assert storage.disable_service(node3, reason="rack move").disabled_reason == "rack move"
    assert storage.enable_service(node3).status == "enabled"


class AdminToken:
    """The part of tempest's AuthProvider its RestClient uses: one endpoint, one token."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def auth_request(self, method: str, url: str, headers: Any = None, body: Any = None, filters: Any = None) -> Any:
        return f"{self.endpoint}/{url}", {**(headers or {}), "X-Auth-Token": TOKEN}, body

    def base_url(self, filters: Any, auth_data: Any = None) -> str:
        return self.endpoint

    def get_token(self) -> str:
        return TOKEN


@pytest.fixture(params=[None, *VERSIONS])
def tempest_version(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """tempest's microversion switch: None sends no header (3.0)."""
    monkeypatch.setattr(base_client, "VOLUME_MICROVERSION", request.param)
    return request.param


def test_tempest_services_client_validates_every_answer(endpoint, tempest_version):
    """ServicesClient validates each body against tempest's schema for the microversion
    (services.py up to 3.6, v3_7 from 3.7); a body that does not fit raises."""
    services = ServicesClient(AdminToken(endpoint), "volumev3", "RegionOne", http_timeout=TIMEOUT)
    assert {(s["binary"], s["host"]) for s in services.list_services()["services"]} == HOSTS
    volumes = services.list_services(binary="cinder-volume")["services"]
    assert {row["host"] for row in volumes} == {host for binary, host in HOSTS if binary == "cinder-volume"}
    services.disable_service(host="node1@lvm", binary="cinder-volume")
    services.disable_log_reason(host="node1@lvm", binary="cinder-volume", disabled_reason="array firmware")
    assert services.list_services(host="node1@lvm")["services"][0]["disabled_reason"] == "array firmware"
    assert services.enable_service(host="node1@lvm", binary="cinder-volume")["status"] == "enabled"


def test_tempest_versions_client_validates_the_version_documents(endpoint):
    versions = VersionsClient(AdminToken(endpoint), "volumev3", "RegionOne", http_timeout=TIMEOUT)
    listed = versions.list_versions()
    assert listed.response.status == 300 and listed["versions"][0]["version"] == "3.49"
    assert versions.show_version("v3")["versions"][0]["min_version"] == "3.0"


def test_tempest_would_refuse_statecores_lifecycle_fields_so_they_stay_out_unless_asked(endpoint, monkeypatch):
    """The check above has teeth: the opt-in's rows break tempest's ``additionalProperties: false``."""
    monkeypatch.setattr(base_client, "VOLUME_MICROVERSION", "3.49")
    services = ServicesClient(AdminToken(endpoint), "volumev3", "RegionOne", http_timeout=TIMEOUT)
    with pytest.raises(InvalidHTTPResponseBody, match="lifecycle"):
        services.list_services(with_lifecycle="true")
