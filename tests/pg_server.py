"""A throwaway PostgreSQL server for the tests, from Debian's ``postgresql`` package.

initdb and postgres refuse to run as root, so as root they run as the
``postgres`` user in a directory it owns; on a free loopback port, trust
authentication, torn down at the end of the session. pg_ctl detaches the server, so no
parent-death signal reaches it: a run ended without its clean-up leaves it, and the next
``postgres_server`` stops it and removes its directory (``sweep``).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


def postgres_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a SQLAlchemy URL of a fresh server; stops it and removes its files afterwards."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    sweep(bindir, as_user)
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    (root / "owner.pid").write_text(f"{os.getpid()}\n")
    if as_user:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    run = [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
    subprocess.run(run, check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
    subprocess.run(start, check=True, capture_output=True)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        _wait_ready(port)
        _DATA[_server(url)] = data
        yield url
    finally:
        _DATA.pop(_server(url), None)
        stop = [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


PREFIX = "statecore-pg-"


def sweep(bindir: Path, as_user: list[str]) -> list[Path]:
    """Stop the servers of test runs that are gone (their owner.pid names no live process) and remove
    their directories; returns those removed. Directories without an owner file are left alone."""
    removed = []
    for root in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((root / "owner.pid").read_text())
            os.kill(owner, 0)
            continue
        except (OSError, ValueError) as gone:
            if not isinstance(gone, ProcessLookupError):
                continue
        stop = [*as_user, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"]
        subprocess.run(stop, capture_output=True, timeout=30)
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


def _wait_ready(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"PostgreSQL did not listen on port {port} within {timeout} s")


_DATA: dict[str, Path] = {}
"""The data directory of each running server, by its URL without the database."""


def _server(url: str) -> str:
    return url.rsplit("/", 1)[0]


def fresh_database(url: str, name: str) -> str:
    """A new, empty database on the server of ``url``; returns its URL."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return _server(url) + "/" + name


@contextmanager
def frozen(url: str) -> Iterator[None]:
    """The server of ``url`` stopped dead (SIGSTOP to its postmaster and every backend), then let go:
    its connections stay open and the kernel still acknowledges them, as with a frozen host."""
    postmaster = int((_DATA[_server(url)] / "postmaster.pid").read_text().split()[0])
    processes = [postmaster, *_children(postmaster)]
    for pid in processes:
        _signal(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in reversed(processes):  # the postmaster last: it reaps children that had ended
            _signal(pid, signal.SIGCONT)


def _signal(pid: int, number: int) -> None:
    with suppress(ProcessLookupError):  # a backend that ended, and was reaped, meanwhile
        os.kill(pid, number)


def _children(parent: int) -> list[int]:
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if int(fields[1]) == parent:
            found.append(int(stat.split("/")[2]))
    return found
