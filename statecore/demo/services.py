"""Drivers whose storage is not ready at first, and the engine that supervises them."""

from __future__ import annotations

import time

from statecore.engine import Engine
from statecore.settings import Settings


class LateBackend:
    """A volume backend that answers only after ``ready_after`` seconds."""

    def __init__(self, ready_after: float) -> None:
        self.ready_at = time.monotonic() + ready_after

    def do_setup(self) -> None:
        if time.monotonic() < self.ready_at:
            raise ConnectionError("backend array not reachable yet")

    def check_for_setup_error(self) -> None:
        """Nothing beyond do_setup to check."""

    def get_volume_stats(self, refresh: bool = False) -> dict[str, object]:
        return {"volume_backend_name": "demo", "backend_state": "up"}


def run_demo() -> Engine:
    """Start a real-time engine with one late backend and one late backup store."""
    settings = Settings(
        reinit_driver_count=0,
        backup_periodic_initialization=True,
        periodic_interval=1,
        report_interval=1,
        service_down_time=3,
        backend_stats_polling_interval=3,
    )
    engine = Engine(settings)
    engine.add_service("demo@lvm", "volume", LateBackend(ready_after=2.5))
    engine.add_service("demo", "backup", LateBackend(ready_after=3.5))
    engine.start()
    return engine
