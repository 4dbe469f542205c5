"""A real-time engine process on a SQLite file, for the crash-recovery test to kill and restart.

Usage: python crash_child.py DB_PATH. It supervises one volume whose driver
always fails recoverably, and exits 0 once the service is failed_permanent.
"""

from __future__ import annotations

import sys
import time

from statecore import Engine, Settings
from statecore.store.sql import SqlStore
from statecore.testing import ScriptedDriver


def main(path: str) -> int:
    settings = Settings(reinit_driver_count=3, reinit_backoff_max=0.3, service_down_time=30)
    engine = Engine(settings, store=SqlStore(f"sqlite:///{path}"), sinks=[])
    engine.add_service("node1@lvm", "volume", ScriptedDriver(["recoverable"]))
    with engine:
        deadline = time.monotonic() + 20
        while engine.service("node1@lvm").lifecycle.value != "failed_permanent":
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.02)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
