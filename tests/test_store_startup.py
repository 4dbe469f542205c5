"""Engines starting together on a fresh database all start: schema creation is taken in turns."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pg_server import fresh_database

from statecore.store.sql import SqlStore

CHILD = Path(__file__).with_name("open_child.py")
ENGINES = 4
TRIALS = 4
GAP = 0.6
"""Seconds between trials: each trial's creation is over well within it."""


def start_together(urls: list[str]) -> list[list[str]]:
    """ENGINES processes open each fresh store at the same instant; each one's results, per store."""
    start_at = time.time() + 2.0  # time for every process to import statecore first
    processes = [
        subprocess.Popen([sys.executable, str(CHILD), str(start_at), str(GAP), *urls], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for _ in range(ENGINES)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=30)[0].splitlines() for process in processes]
    return [[output[trial] if trial < len(output) else "no answer" for output in outputs] for trial in range(len(urls))]


def check_all_started(trials: list[list[str]], stores: list[SqlStore]) -> None:
    failures = [f"trial {n}: {line}" for n, results in enumerate(trials) for line in results if line != "ok"]
    assert failures == [], "\n".join(failures)
    for store in stores:
        assert len(store.fleet(60)) == ENGINES  # each engine registered its service in the one schema


def test_four_engines_on_a_fresh_postgresql_database_at_once_all_start(pg_url):
    urls = [fresh_database(pg_url, f"together{n}") for n in range(TRIALS)]
    check_all_started(start_together(urls), [SqlStore(url) for url in urls])


def test_four_engines_on_a_fresh_sqlite_file_at_once_all_start(tmp_path):
    urls = [f"sqlite:///{tmp_path / f'together{n}.sqlite'}" for n in range(TRIALS)]
    check_all_started(start_together(urls), [SqlStore(url) for url in urls])
