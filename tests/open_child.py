"""One engine process opening fresh stores at agreed instants, for the simultaneous-start test.

Usage: python open_child.py START_AT GAP URL... At START_AT (seconds since the epoch), then GAP
seconds apart, it opens each store in turn (creating and upgrading its schema) and registers a
service there. Prints one line per store, ``ok`` or the error, and exits 0 only if all were ok.
"""

from __future__ import annotations

import sys
import time

from statecore import Engine, Settings
from statecore.store.sql import SqlStore
from statecore.testing import ScriptedDriver


def open_one(url: str) -> str:
    try:
        store = SqlStore(url)
        engine = Engine(Settings(), store=store, sinks=[], owner=f"host{time.monotonic_ns()}")
        engine.add_service(f"{engine.owner}@lvm", "volume", ScriptedDriver(["ok"]))
        store.close()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "ok"


def main(start_at: float, gap: float, urls: list[str]) -> int:
    results = []
    for index, url in enumerate(urls):
        time.sleep(max(0.0, start_at + index * gap - time.time()))
        results.append(open_one(url))
        print(results[-1], flush=True)
    return 0 if all(result == "ok" for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]))
