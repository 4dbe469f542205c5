"""Shared by the HTTP API tests: a small fleet in virtual time, tokens, and a driver whose error
text carries a secret that must never reach a non-admin."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import httpx
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served(NamedTuple):
    """A `statecore serve` process and the file its output goes to (a pipe nobody reads would fill
    after some hundreds of requests and block the server)."""

    process: subprocess.Popen[bytes]
    log: Path


def serve(log: Path, *args: str) -> Served:
    """`statecore serve ...` as an operator starts it: its own process, a real uvicorn, its output
    in ``log``."""
    environ = {k: v for k, v in os.environ.items() if k != "STATECORE_ADMIN_TOKEN"}
    command = [sys.executable, "-m", "statecore", "serve", *args]
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, env=environ, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    return Served(process, log)


def wait_until_serving(served: Served, port: int, seconds: float = 15) -> None:
    """Until the server answers on ``port``; fails with its output if it exits, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.TransportError:
            assert served.process.poll() is None, served.log.read_text(errors="replace")
            assert time.monotonic() < deadline, "statecore serve did not start"
            time.sleep(0.1)


def stop(served: Served, seconds: float = 10) -> None:
    """Terminate, and kill what does not end within ``seconds``: no test leaves a server behind."""
    served.process.terminate()
    try:
        served.process.wait(seconds)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait(seconds)
