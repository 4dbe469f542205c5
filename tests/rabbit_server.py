"""A throwaway RabbitMQ broker for the tests, from Debian's ``rabbitmq-server`` package.

Everything the node writes (its database, logs, Erlang cookie, enabled plugins) lives in
a temporary base directory; it listens on a free loopback port, under a node name of its
own, and finds itself through an ``epmd`` of its own on another free port, so it neither
meets a broker already running on the machine nor leaves a daemon behind. ``stop`` and
``start`` keep the base directory: the same broker goes away and comes back on its port.
"""

from __future__ import annotations

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
        }
        self._epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._node: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start the node and wait until it accepts AMQP connections; returns the seconds it took."""
        began = time.monotonic()
        out = (self.root / "server.out").open("ab")
        self._node = subprocess.Popen(
            [str(SERVER)], env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
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
    root = Path(tempfile.mkdtemp(prefix="statecore-rabbit-"))
    broker = Broker(root)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()
        shutil.rmtree(root, ignore_errors=True)
