"""One engine host for the many-hosts test: a volume and a backup of HOST, heartbeating into URL.

Usage: python host_child.py HOST URL. Runs in real time until killed (or 60 s).
"""

from __future__ import annotations

import sys
import time

from statecore import Engine, Settings
from statecore.store.sql import SqlStore
from statecore.testing import ScriptedDriver


def main(host: str, url: str) -> int:
    settings = Settings(report_interval=0.5, service_down_time=2)
    engine = Engine(settings, store=SqlStore(url), sinks=[], owner=host)
    engine.add_service(f"{host}@lvm", "volume", ScriptedDriver(["ok"]))
    engine.add_service(host, "backup", ScriptedDriver(["ok"]))
    with engine:
        time.sleep(60)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
