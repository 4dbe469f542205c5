"""A throwaway RabbitMQ broker for the tests, from Debian's ``rabbitmq-server`` package.

Everything the node writes (its database, logs, Erlang cookie, enabled plugins) lives in
a temporary base directory; it listens on a free loopback port, under a node name of its
own, and finds itself through an ``epmd`` of its own on another free port, so it neither
meets a broker already running on the machine nor leaves a daemon behind. ``stop`` and
``start`` keep the base directory: the same broker goes away and comes back on its port.

A test run that ends without its clean-up (SIGTERM, SIGKILL, a crash) leaves nothing running:
the node and its epmd get a parent-death signal from the kernel. What it leaves on disk, the next
``rabbitmq_server`` sweeps: base directories whose test process is gone, and any process their
pid files still name.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
START_TIMEOUT = 60.0
PREFIX = "statecore-rabbit-"
PR_SET_PDEATHSIG = 1
UNOWNED_AFTER = 3600.0
"""Seconds after which a base directory without an owner file (an older layout) counts as stale."""


def _dies_with_us() -> None:
    """``preexec_fn``: the kernel kills the child when the process that started it ends, however it
    ends; it survives the ``exec`` of the server script into the Erlang VM."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kill_if_ours(pid: int | None, root: Path) -> None:
    """Only a process whose command line or environment names ``root``: a pid may have been reused."""
    if pid is None:
        return
    try:
        seen = Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return
    if str(root).encode() in seen:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def sweep(base: Path | None = None) -> list[Path]:
    """Remove the base directories of brokers whose test process is gone, killing what they left
    running; returns the directories removed. A live test run's broker is left alone."""
    removed = []
    for root in Path(base or tempfile.gettempdir()).glob(PREFIX + "*"):
        owner = _pid_in(root / "owner.pid")
        if owner is None:
            with suppress(OSError):
                if time.time() - root.stat().st_mtime < UNOWNED_AFTER:
                    continue
        elif _alive(owner):
            continue
        for pid_file in ("rabbit.pid", "epmd.pid"):
            _kill_if_ours(_pid_in(root / pid_file), root)
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


def rabbitmq_installed() -> bool:
    return SERVER.exists() and shutil.which("epmd") is not None


def _free_port(below: int = 65536) -> int:
    """A free loopback port; Erlang's distribution port is this plus 20000, so keep room for it."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port < below:
            return port


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Broker:
    """One RabbitMQ node; ``url`` is its oslo.messaging transport URL."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port(below=65536 - 20000)
        self.epmd_port = _free_port()
        self.url = f"rabbit://guest:guest@127.0.0.1:{self.port}/"
        (root / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n", encoding="utf-8"
        )
        (root / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        self.env = {
            **os.environ,
            "HOME": str(root),  # the Erlang cookie goes here
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_BASE": str(root),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_PID_FILE": str(root / "rabbit.pid"),
            "RABBITMQ_NODENAME": f"statecore-{uuid.uuid4().hex[:8]}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.port + 20000),
            "RABBITMQ_LOGS": str(root / "log" / "rabbit.log"),
            "RUNNING_UNDER_SYSTEMD": "true",  # the script execs the VM: the death signal reaches beam itself
        }
        (root / "owner.pid").write_text(f"{os.getpid()}\n")
        self._epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_dies_with_us,
        )
        (root / "epmd.pid").write_text(f"{self._epmd.pid}\n")
        self._node: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start the node and wait until it accepts AMQP connections; returns the seconds it took."""
        began = time.monotonic()
        out = (self.root / "server.out").open("ab")
        self._node = subprocess.Popen(
            [str(SERVER)],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_dies_with_us,
        )
        out.close()
        while not _listening(self.port):
            if self._node.poll() is not None or time.monotonic() - began > timeout:
                log = (self.root / "server.out").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"RabbitMQ did not listen on port {self.port} within {timeout:g} s:\n{log}")
            time.sleep(0.1)
        return time.monotonic() - began

    def stop(self) -> None:
        """Stop the node (its whole process group: beam and the helpers it spawned) and wait for it."""
        node, self._node = self._node, None
        if node is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGTERM)
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
            node.wait()
        with suppress(ProcessLookupError):  # what it spawned and left (inet_gethost, erl_child_setup)
            os.killpg(node.pid, signal.SIGKILL)

    def kill(self) -> None:
        """The node dies at once (SIGKILL), as in a power cut: only what it had on disk survives."""
        node, self._node = self._node, None
        if node is not None:
            with suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
            node.wait()

    def freeze(self, frozen: bool = True) -> None:
        """Stop the node's processes (SIGSTOP) or let them go on: a hung broker that keeps its sockets open."""
        assert self._node is not None
        os.killpg(self._node.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        self._epmd.terminate()
        try:
            self._epmd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._epmd.kill()
            self._epmd.wait()


@contextmanager
def rabbitmq_server() -> Iterator[Broker]:
    """A started broker; stopped, its epmd ended and its files removed afterwards."""
    if not rabbitmq_installed():
        raise RuntimeError("RabbitMQ is not installed: apt-get install -y rabbitmq-server")
    sweep()
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    broker = Broker(root)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()
        shutil.rmtree(root, ignore_errors=True)
