"""Shared by the Cinder tests: a cinder.conf writer, a virtual engine on it, moto's S3 server on a
free loopback port, a PATH without ``lvm``, and a real Cinder driver class with its storage replaced
for the one case this machine cannot stage.

No array here can lose its controllers on cue, so the stats test uses Cinder's LVM driver with a
volume group taken as present and a backend whose pool reports ``backend_state: down`` in its
stats, the way drivers of arrays report an unreachable backend (per pool, where Cinder's API
reads it). Everything else (construction, configuration group, ``get_volume_stats(refresh=True)``,
``init_capabilities()``) is Cinder's own code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from statecore import Engine, MemorySink
from statecore.cinder import cinder_classifier, read_cinder_conf
from statecore.cinder.imports import importutils
from statecore.store import MemoryStore

lvm = importutils.import_module("cinder.volume.drivers.lvm")


class BackendDownDriver(lvm.LVMVolumeDriver):  # type: ignore[misc]
    def check_for_setup_error(self) -> None:
        """The volume group is taken as present (this machine has none)."""

    def _update_volume_stats(self) -> None:
        stats: dict[str, Any] = {
            "volume_backend_name": self.backend_name,
            "vendor_name": "Open Source",
            "driver_version": self.VERSION,
            "storage_protocol": "iSCSI",
            "pools": [{"pool_name": "gold", "total_capacity_gb": 0, "free_capacity_gb": 0, "backend_state": "down"}],
        }
        self._stats = stats


class RecordingDriver(BackendDownDriver):
    """Records the calls ``_init_host`` makes after setup, in order, and makes them (Cinder's own code)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def init_capabilities(self) -> None:
        self.calls.append("init_capabilities")
        super().init_capabilities()

    def set_throttle(self) -> None:
        self.calls.append("set_throttle")
        super().set_throttle()

    def set_initialized(self) -> None:
        self.calls.append("set_initialized")
        super().set_initialized()


def write_conf(directory: Path, text: str, name: str = "cinder.conf") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def supervise(conf: Path) -> tuple[Engine, MemorySink]:
    """A virtual-time engine running the services of ``conf`` with Cinder's classifier, started."""
    sink = MemorySink()
    engine = Engine.virtual_time(classifier=cinder_classifier, sinks=[sink], store=MemoryStore())
    engine.add_services(read_cinder_conf(conf))
    engine.start()
    return engine, sink


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def s3_server(port: int) -> Iterator[None]:
    """moto's S3-compatible server on loopback until the block ends."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield
    finally:
        server.stop()


def path_without_lvm(directory: Path) -> str:
    """A PATH with every command of this one but ``lvm``, so LVM's driver finds no ``lvm`` on any machine
    (Cinder runs ``env LC_ALL=C lvm version``, and other tools while it loads)."""
    directory.mkdir(exist_ok=True)
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        for command in Path(folder).glob("*") if Path(folder).is_dir() else ():
            link = directory / command.name
            if command.name != "lvm" and not link.exists() and os.access(command, os.X_OK):
                link.symlink_to(command)
    assert shutil.which("env", path=str(directory)) and not shutil.which("lvm", path=str(directory))
    return str(directory)


def s3_conf(port: int, **extra: str) -> str:
    options = {
        "backup_s3_endpoint_url": f"http://127.0.0.1:{port}",
        "backup_s3_store_access_key": "statecore",
        "backup_s3_store_secret_key": "statecore-secret",
        **extra,
    }
    lines = "".join(f"{key} = {value}\n" for key, value in options.items() if value)
    return (
        "[DEFAULT]\nhost = node1\nbackup_driver = cinder.backup.drivers.s3.S3BackupDriver\n"
        "backup_s3_retry_max_attempts = 1\nbackup_s3_timeout = 2\n" + lines + "[database]\nconnection = sqlite://\n"
    )
