"""The README's first command: a real-time run where storage appears a few seconds after start.

A TCP "array" starts listening after 2 s and a backup directory appears after
3.5 s, so a new user watches both services go ``failed_recoverable`` →
``up`` in the live service list, backed by a SQLite store that ``statecore
service-list`` can read from another terminal.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from statecore.live import RunConfig, ServiceConfig

DEMO_DIR = Path(".statecore-demo")
ARRAY_AFTER = 2.0
BACKUPS_AFTER = 3.5


def demo_config(workdir: Path, port: int) -> RunConfig:
    return RunConfig(
        store=str(workdir / "statecore.sqlite"),
        notifications=str(workdir / "notifications.jsonl"),
        refresh=0.5,
        settings={
            "reinit_driver_count": 0, "reinit_backoff_max": 2, "backup_periodic_initialization": True,
            "periodic_interval": 1, "report_interval": 1, "service_down_time": 3,
            "backend_stats_polling_interval": 3,
        },
        services=[
            ServiceConfig(host="demo@array", binary="volume", driver="statecore.drivers_builtin:TcpVolumeDriver",
                          driver_options={"host": "127.0.0.1", "port": port, "timeout": 0.5}),
            ServiceConfig(host="demo", binary="backup", driver="statecore.drivers_builtin:PosixBackupDriver",
                          driver_options={"path": str((workdir / "backups").resolve())}),
        ],
    )  # fmt: skip


def _serve(array: socket.socket) -> None:
    """Accept and drop connections, as an array's endpoint that is up would, until the demo ends."""
    array.listen()
    while True:
        try:
            connection, _ = array.accept()
        except OSError:
            return
        connection.close()


@contextmanager
def staged_storage(workdir: Path) -> Iterator[tuple[int, Callable[[], None]]]:
    """A fresh demo directory; yields the array's port and the call that starts the clocks of its
    late storage. The clocks start when the engine is about to, not here: on a slow or busy machine
    the engine's own start-up could take the 2 s, and the array would answer the very first try."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    array = socket.socket()
    array.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    array.bind(("127.0.0.1", 0))
    timers = [
        threading.Timer(ARRAY_AFTER, _serve, args=(array,)),
        threading.Timer(BACKUPS_AFTER, (workdir / "backups").mkdir),
    ]
    for timer in timers:
        timer.daemon = True

    def start() -> None:
        for timer in timers:
            timer.start()

    try:
        yield array.getsockname()[1], start
    finally:
        for timer in timers:
            timer.cancel()
        array.close()
