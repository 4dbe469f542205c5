"""The built-in drivers against real things: a directory that appears late, a TCP endpoint that
comes and goes on loopback. The engine runs in virtual time; the filesystem and sockets are real."""

from __future__ import annotations

import os
import pickle
import pwd
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Harness

from statecore import ConfigError, Engine, MemorySink, Settings
from statecore.drivers_builtin import PosixBackupDriver, TcpVolumeDriver
from statecore.drivers_builtin.posix import PROBE_PREFIX


class Endpoint:
    """A loopback port that refuses connections until ``open`` and again after ``close``.

    The port is bound at once, so nothing else takes it, but not listened on: the kernel
    refuses connections, as it does for an array still booting.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="test-endpoint", daemon=True)

    def open(self) -> None:
        self.sock.listen(8)
        self._thread.start()

    def close(self) -> None:
        """Shut the listener (a blocked accept returns), then wait for the thread, boundedly."""
        if self._thread.is_alive():
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            connection.close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    yield server
    if server.sock.fileno() != -1:
        server.close()


def lifecycle(h: Harness, host: str) -> tuple[str, Any]:
    row = h.engine.service(host)
    return row.lifecycle.value, row.backend_state


# -- PosixBackupDriver -----------------------------------------------------------------------------


def test_backup_directory_that_appears_later_brings_the_service_up(tmp_path: Path):
    share = tmp_path / "share"
    h = Harness(backup_periodic_initialization=True, periodic_interval=30, service_down_time=120)
    h.add("backup1", "backup", PosixBackupDriver(str(share)))
    h.engine.start()
    h.engine.advance(45)
    assert lifecycle(h, "backup1") == ("failed_recoverable", None)
    failures = [e["payload"]["error"] for e in h.sink.envelopes if e["event_type"] == "backup.init.failure"]
    assert failures[0]["type"] == "FileNotFoundError" and str(share) in failures[0]["message"]

    share.mkdir()
    h.engine.advance(15)  # the periodic re-init at t=60 finds it
    assert lifecycle(h, "backup1")[0] == "up"
    assert h.timeline("backup1")[-1] == (60, "backup.init.success", "initializing", "up")
    assert not list(share.iterdir())  # the write probe cleaned up after itself


def test_backup_directory_unmounted_under_a_running_service_is_a_lost_driver(tmp_path: Path):
    h = Harness(backup_periodic_initialization=True, periodic_interval=30)
    h.add("backup1", "backup", PosixBackupDriver(str(tmp_path)))
    h.engine.start()
    h.engine.advance(1)
    assert lifecycle(h, "backup1")[0] == "up"

    tmp_path.rename(tmp_path.with_name(tmp_path.name + "-gone"))
    h.engine.advance(29)  # the capabilities job re-checks is_working()
    assert h.timeline("backup1")[-1] == (30, "backup.driver.lost", "up", "failed_recoverable")


def test_a_file_where_the_directory_should_be_is_not_a_backup_directory(tmp_path: Path):
    path = tmp_path / "share"
    path.write_text("not a directory")
    driver = PosixBackupDriver(str(path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        driver.do_setup()
    assert driver.is_working() is False


def test_a_directory_that_is_not_writable_fails_recoverably():
    """As an unprivileged service would meet it: as root, a forked child drops to ``nobody`` first,
    since root writes through any permission bits."""
    directory = Path(tempfile.mkdtemp())  # in the system temp dir, which every user can traverse
    directory.chmod(0o555)
    try:
        error = run_unprivileged(lambda: PosixBackupDriver(str(directory)).check_for_setup_error())
    finally:
        directory.chmod(0o755)
        directory.rmdir()
    assert isinstance(error, PermissionError), error
    assert "not writable" in str(error)


def run_unprivileged(call: Callable[[], object]) -> BaseException | None:
    """What ``call`` raises when run by an unprivileged user: here if we are one, else in a child that
    has dropped to ``nobody`` (a real setuid, not a mocked check)."""
    if os.geteuid() != 0:
        try:
            call()
        except Exception as error:
            return error
        return None
    nobody = pwd.getpwnam("nobody")
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges for good, run, report, never return into pytest
        outcome: BaseException | None = None
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            call()
        except BaseException as error:
            outcome = error
        with os.fdopen(writer, "wb") as out:
            out.write(pickle.dumps(outcome))
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as incoming:
        payload = incoming.read()
    os.waitpid(pid, 0)
    return pickle.loads(payload)


def test_a_directory_writable_by_permission_but_not_in_fact_fails_the_write_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A read-only mount passes ``os.access`` for root; the real write is what tells."""

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("statecore.drivers_builtin.posix.tempfile.NamedTemporaryFile", read_only)
    driver = PosixBackupDriver(str(tmp_path))
    with pytest.raises(OSError, match="Read-only"):
        driver.check_for_setup_error()
    assert driver.is_working() is False


def test_a_relative_backup_path_is_a_configuration_error_and_never_retried():
    with pytest.raises(ConfigError, match="'backups' must be absolute"):
        PosixBackupDriver("backups")
    h = Harness(backup_periodic_initialization=True)
    h.engine.add_service(
        "backup1", "backup", "statecore.drivers_builtin:PosixBackupDriver", driver_options={"path": "backups"}
    )
    h.engine.start()
    h.engine.advance(600)
    assert h.timeline("backup1") == [(0, "backup.init.failure", "starting", "failed_permanent")]
    assert "must be absolute" in h.sink.envelopes[0]["payload"]["error"]["message"]


def test_probe_files_are_named_so_an_operator_knows_whose_they_are(tmp_path: Path):
    seen: list[str] = []
    real = os.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> int:
        seen.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "open", spy)
        PosixBackupDriver(str(tmp_path)).check_for_setup_error()
    assert seen and all(name.startswith(PROBE_PREFIX) for name in seen)


# -- TcpVolumeDriver -------------------------------------------------------------------------------------


def test_array_that_starts_listening_later_brings_the_backend_up_and_its_loss_shows_as_backend_down(
    endpoint: Endpoint,
):
    h = Harness(reinit_driver_count=0, backend_stats_polling_interval=10)
    h.add("node1@array", "volume", TcpVolumeDriver("127.0.0.1", endpoint.port))
    h.engine.start()
    h.engine.advance(5)  # attempts at t=0, 1, 3: refused
    assert lifecycle(h, "node1@array") == ("failed_recoverable", None)
    errors = [e["payload"]["error"] for e in h.sink.envelopes if e["event_type"] == "volume.init.failure"]
    assert errors[0]["type"] == "ConnectionError" and f"127.0.0.1:{endpoint.port}" in errors[0]["message"]

    endpoint.open()
    h.engine.advance(3)  # retry 3 at t=7 connects
    assert lifecycle(h, "node1@array") == ("up", "up")
    assert h.timeline("node1@array")[-1] == (7, "volume.init.success", "initializing", "up")

    endpoint.close()
    h.engine.advance(10)  # the next stats poll finds nobody listening: the service stays up, its backend is down
    assert lifecycle(h, "node1@array") == ("up", "down")


def test_stats_carry_capacity_style_keys(endpoint: Endpoint):
    endpoint.open()
    stats = TcpVolumeDriver("127.0.0.1", endpoint.port).get_volume_stats(refresh=True)
    assert stats["backend_state"] == "up"
    assert {"volume_backend_name", "free_capacity_gb", "total_capacity_gb", "storage_protocol"} <= set(stats)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"host": "127.0.0.1", "port": 70000}, "port 70000 must be an integer from 1 to 65535"),
        ({"host": "127.0.0.1", "port": "3260"}, "port '3260' must be an integer"),
        ({"host": "", "port": 3260}, "host '' must be a non-empty host name"),
        ({"host": "127.0.0.1", "port": 3260, "timeout": 0}, "timeout 0 must be a number of seconds > 0"),
    ],
)
def test_a_bad_endpoint_is_a_configuration_error_at_start(options: dict[str, Any], message: str):
    with pytest.raises(ConfigError, match=message):
        TcpVolumeDriver(**options)
    h = Harness()
    h.engine.add_service("node1@array", "volume", "statecore.drivers_builtin:TcpVolumeDriver", driver_options=options)
    h.engine.start()
    assert h.timeline("node1@array") == [(0, "volume.init.failure", "starting", "failed_permanent")]


def test_real_time_engine_brings_a_listening_array_up_and_polls_it(endpoint: Endpoint):
    """Real threads and a real clock: wait, boundedly, for the first stats poll after init."""
    endpoint.open()
    polled = threading.Event()

    class Signalling(TcpVolumeDriver):
        def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
            stats = super().get_volume_stats(refresh)
            polled.set()
            return stats

    sink = MemorySink()
    engine = Engine(Settings(), sinks=[sink])
    engine.add_service("node1@array", "volume", Signalling("127.0.0.1", endpoint.port))
    with engine:
        assert polled.wait(timeout=10), sink.event_types()
        assert engine.service("node1@array").lifecycle.value == "up"
