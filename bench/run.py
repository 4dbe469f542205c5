"""statecore run: how long a fleet takes to start, and what the running process costs with its
live screen in a terminal.

Each run writes a run.toml of ``count`` volume services (``ScriptedDriver``, which initializes at
once) on a SQLite store, starts ``python -m statecore run`` in a pseudo-terminal of 200x50 (so the
live screen draws as it would for an operator), and reads the store from outside, as
``statecore service-list`` would, until every service is up there. The first run then stays for
consecutive windows of CPU time, read from /proc, of the whole process: engine, store, JSON-lines
sink and screen.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pty
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import Section, Sizes

UP_WITHIN = 120.0


def write_config(folder: Path, count: int) -> Path:
    lines = ['store = "run.sqlite"', 'notifications = "notifications.jsonl"', "refresh = 1.0", ""]
    for index in range(count):
        lines += ["[[services]]", f'host = "node{index}@lvm"', 'binary = "volume"',
                  'driver = "statecore.testing:ScriptedDriver"', ""]  # fmt: skip
    path = folder / "run.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def up_in_store(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            return int(
                connection.execute("SELECT count(*) FROM statecore_services WHERE lifecycle = 'up'").fetchone()[0]
            )
    except sqlite3.Error:
        return 0  # not created yet


def process_cpu(pid: int) -> float:
    """CPU seconds of another process, every thread's (ended ones too), to the nanosecond: its
    CPU-time clock (clock_getcpuclockid), where /proc's counters tick only every 10 ms."""
    clock = ctypes.c_int()
    if _LIBC.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
        raise OSError(ctypes.get_errno(), f"no CPU clock for process {pid}")
    return time.clock_gettime(clock.value)


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def one_run(count: int, windows: int, window: float) -> tuple[float, list[float]]:
    """(seconds until every service is up in the store, CPU share of each window after that)."""
    with tempfile.TemporaryDirectory(prefix="statecore-bench-run-") as folder:
        config = write_config(Path(folder), count)
        primary, secondary = pty.openpty()
        environment = dict(os.environ, COLUMNS="200", LINES="50", TERM="xterm-256color")
        begin = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "statecore", "run", str(config)], stdin=secondary,
                                   stdout=secondary, stderr=subprocess.DEVNULL, env=environment)  # fmt: skip
        os.close(secondary)
        threading.Thread(target=_drain, args=(primary,), daemon=True).start()
        try:
            while up_in_store(Path(folder) / "run.sqlite") < count:
                if time.perf_counter() - begin > UP_WITHIN or process.poll() is not None:
                    raise RuntimeError(f"statecore run did not bring {count} services up within {UP_WITHIN:g} s")
                time.sleep(0.05)
            started = time.perf_counter() - begin
            shares = []
            for _ in range(windows):
                cpu, wall = process_cpu(process.pid), time.perf_counter()
                time.sleep(window)
                shares.append(100 * (process_cpu(process.pid) - cpu) / (time.perf_counter() - wall))
            return started, shares
        finally:
            process.send_signal(signal.SIGINT)  # Ctrl-C: the clean stop an operator makes
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            os.close(primary)


def _drain(primary: int) -> None:
    """Read what the screen writes, as a terminal would, so the process never blocks on it."""
    while True:
        try:
            if not os.read(primary, 65536):
                return
        except OSError:
            return


def run(sizes: Sizes) -> Section:
    section = Section("statecore run")
    count = sizes.realtime_services
    first, shares = one_run(count, sizes.heavy_runs, sizes.realtime_window)
    starts = [first] + [one_run(count, 0, 0)[0] for _ in range(sizes.heavy_runs - 1)]
    section.add(f"all {count:,} services up in the SQLite store after `statecore run` starts", starts, "s",
                note="process start-up included")  # fmt: skip
    section.add(f"CPU of `statecore run`, {count:,} services, live screen in a 200x50 terminal", shares,
                "% of one core", note=f"{sizes.realtime_window:g} s windows")  # fmt: skip
    section.notes.append(
        f"CPU share: {len(shares)} consecutive windows of {sizes.realtime_window:g} s of the whole process "
        f"from the moment every service is up ({', '.join(f'{s:.2f} %' for s in shares)})"
        + ("; together they span the 60 s expiry and capabilities jobs once." if not sizes.quick else ".")
    )
    section.notes.append(
        "Targets: 10,000 services all started within 5 s on SQLite; the running process, screen included, "
        "under 5 % of a core (the engine alone: under 2 %)."
    )
    return section
