"""Shared by the HTTP API tests: a small fleet in virtual time, tokens, and a driver whose error
text carries a secret that must never reach a non-admin."""

from __future__ import annotations

from fastapi.testclient import TestClient
from support import Harness

from statecore.api import EngineSource, Source, StaticTokenPolicy, create_app
from statecore.errors import ConfigError

SECRET = "password=hunter2 on array 10.9.8.7"
ADMIN = {"X-Auth-Token": "admin-token"}
USER = {"X-Auth-Token": "user-token"}
POLICY = StaticTokenPolicy("admin-token", {"user-token": {"member"}})
SERVICES = "/v3/project-1/os-services"


class LeakyDriver:
    """A driver whose configuration error quotes its credentials, as real ones do."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret

    def do_setup(self) -> None:
        raise ConfigError(f"login refused: {self.secret}")

    def check_for_setup_error(self) -> None:
        """do_setup already failed."""


def fleet(harness: Harness | None = None) -> Harness:
    """node1@lvm (volume, up), node2@array (volume, failed_permanent with SECRET in its error),
    node1 (backup, up) and node3 (backup, up, zone az2), after 30 virtual seconds."""
    harness = harness or Harness()
    harness.add("node1@lvm", "volume", harness.driver("ok"))
    harness.engine.add_service("node2@array", "volume", LeakyDriver, driver_options={"secret": SECRET})
    harness.add("node1", "backup", harness.driver("ok"))
    harness.engine.add_service("node3", "backup", harness.driver("ok"), zone="az2")
    harness.engine.start()
    harness.engine.advance(30)
    return harness


def client(source: Source, **options: bool) -> TestClient:
    return TestClient(create_app(source, POLICY), **options)


def engine_client(harness: Harness | None = None) -> tuple[Harness, TestClient]:
    harness = harness or fleet()
    return harness, client(EngineSource(harness.engine))
