"""One engine of the ownership tests: OWNER drives (or stands by for) volumes node0..node2 in URL.

Usage: python lease_child.py OWNER URL. Runs in real time until killed (or 120 s); logs to stderr.
"""

from __future__ import annotations

import sys
import time

from statecore import Engine, Settings
from statecore.store.sql import SqlStore
from statecore.testing import ScriptedDriver

HOSTS = [f"node{index}@lvm" for index in range(3)]
SETTINGS = Settings(report_interval=0.5, service_down_time=2, lease_time=1.5, standby=True)


def main(owner: str, url: str) -> int:
    engine = Engine(SETTINGS, store=SqlStore(url), sinks=[], owner=owner)
    for host in HOSTS:
        engine.add_service(host, "volume", ScriptedDriver(["ok"]))
    with engine:
        time.sleep(120)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
