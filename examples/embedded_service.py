"""A small storage service that embeds statecore, as a user of the library would.

It brings its own driver class (a share exported from a local directory),
registers one volume backend and one backup service, and refuses new volumes
while the backend is not up. Run it for real with:

    python examples/embedded_service.py /tmp/share-export

and create the directory from another shell: the backend goes from
``failed_recoverable`` to ``up`` on the next retry.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from statecore import ConfigError, Engine, LoguruSink, MemorySink, Settings
from statecore.clock import Clock


class ShareDriver:
    """Volumes live as files under an exported directory, which may appear late (a slow mount)."""

    def __init__(self, export: str) -> None:
        if not os.path.isabs(export):
            raise ConfigError(f"export {export!r} must be an absolute path")
        self.export = Path(export)

    def do_setup(self) -> None:
        if not self.export.is_dir():
            raise ConnectionError(f"export {self.export} is not mounted yet")

    def check_for_setup_error(self) -> None:
        if not os.access(self.export, os.W_OK):
            raise PermissionError(f"export {self.export} is not writable")

    def is_working(self) -> bool:
        return self.export.is_dir()

    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        usage = shutil.disk_usage(self.export)
        return {
            "volume_backend_name": "share",
            "free_capacity_gb": usage.free // 2**30,
            "backend_state": "up" if os.access(self.export, os.W_OK) else "down",
        }


class VolumeService:
    """The embedding service: its API consults the engine before taking work."""

    def __init__(self, export: str, clock: Clock | None = None, sink: MemorySink | None = None) -> None:
        settings = Settings(
            reinit_driver_count=0, reinit_backoff_max=8, report_interval=2, service_down_time=6,
            backup_periodic_initialization=True, periodic_interval=5,
        )  # fmt: skip
        self.engine = Engine(settings, clock=clock, sinks=[sink or LoguruSink()])
        self.engine.add_service("share@local", "volume", ShareDriver, driver_options={"export": export})
        self.engine.add_service("share", "backup", ShareDriver, driver_options={"export": export})

    def create_volume(self, name: str) -> str:
        row = self.engine.service("share@local")
        if row.state != "up" or row.backend_state != "up":
            raise RuntimeError(f"cannot create {name}: backend is {row.lifecycle.value}")
        return f"{name} created on share@local"


def main(export: str, seconds: float = 30.0) -> None:
    service = VolumeService(export)
    with service.engine:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(1)
            print([(row.host, row.lifecycle.value, row.backend_state) for row in service.engine.service_list()])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/statecore-share")
