"""Cinder's own drivers, unchanged, supervised from a cinder.conf: each classification the reinit
spec asks for, proven with Cinder's classes on this machine (virtual time; real S3 server)."""

from __future__ import annotations

import re
import socket
import threading

import pytest
from api_support import ADMIN, SERVICES, client
from cinder_support import free_port, path_without_lvm, s3_conf, s3_server, supervise, write_conf
from support import seconds_until

from statecore import Engine, MemorySink
from statecore.api import EngineSource
from statecore.cinder import CinderVolume, cinder_classifier, read_cinder_conf
from statecore.store import MemoryStore

DB = "[database]\nconnection = sqlite://\n"


def volume_conf(backend: str, driver: str, **options: str) -> str:
    lines = "".join(f"{key} = {value}\n" for key, value in options.items())
    return f"[DEFAULT]\nhost = node1\nenabled_backends = {backend}\n{DB}[{backend}]\nvolume_driver = {driver}\n{lines}"


def test_s3_backup_is_retried_until_its_storage_appears_then_up(tmp_path):
    port = free_port()
    conf = write_conf(tmp_path, s3_conf(port, backup_periodic_initialization="true", periodic_interval="5"))
    engine, _ = supervise(conf)
    engine.advance(2)
    first = engine.service("node1", binary="backup")
    assert first.lifecycle.value == "failed_recoverable"
    assert first.last_error is not None and first.last_error.startswith("EndpointConnectionError")
    with s3_server(port):  # the storage appears a few (virtual) seconds after the service started
        engine.advance(5)
        assert engine.service("node1", binary="backup").lifecycle.value == "up"
    engine.shutdown()


@pytest.mark.parametrize(
    ("unset", "error"),
    [
        (("backup_s3_endpoint_url",), 'InvalidConfigurationValue: Value "None" is not valid for configuration option'
         ' "backup_s3_endpoint_url"'),
        (("backup_s3_store_access_key", "backup_s3_store_secret_key"), 'InvalidConfigurationValue: Value "None" is'
         ' not valid for configuration option "backup_s3_store_access_key"'),
        (("backup_s3_store_secret_key",), "PartialCredentialsError: Partial credentials found in explicit, missing:"
         " aws_secret_access_key"),
    ],
)  # fmt: skip
def test_s3_with_a_key_missing_is_failed_permanent_naming_the_option(tmp_path, unset, error):
    """With periodic initialization on, only an unrecoverable verdict stops the retries."""
    options = dict.fromkeys(unset, "")
    conf = write_conf(tmp_path, s3_conf(free_port(), backup_periodic_initialization="true", **options))
    engine, sink = supervise(conf)
    engine.advance(1)
    row = engine.service("node1", binary="backup")
    assert (row.lifecycle.value, row.last_error) == ("failed_permanent", error)
    assert sink.envelopes[-1]["event_type"] == "backup.init.failure"
    engine.shutdown()


def test_s3_with_an_endpoint_without_scheme_is_failed_permanent(tmp_path):
    """botocore refuses the URL in the driver's constructor: no retry fixes the file."""
    text = s3_conf(free_port(), backup_periodic_initialization="true").replace("http://127.0.0.1", "127.0.0.1")
    engine, _ = supervise(write_conf(tmp_path, text))
    engine.advance(1)
    row = engine.service("node1", binary="backup")
    assert row.lifecycle.value == "failed_permanent"
    assert row.last_error is not None and row.last_error.startswith("ValueError: Invalid endpoint: 127.0.0.1:")
    engine.shutdown()


def permanent_error_of_first_attempt(conf, host: str) -> str:
    """The error of a volume service that its first attempt left failed_permanent."""
    engine, _ = supervise(conf)
    try:
        engine.advance(1)
        row = engine.service(host)
        assert row.lifecycle.value == "failed_permanent"
        assert row.last_error is not None
        return row.last_error
    finally:
        engine.shutdown()


def test_nfs_without_its_shares_file_is_failed_permanent(tmp_path):
    missing = tmp_path / "nfs_shares"
    conf = write_conf(tmp_path, volume_conf("nfs", "cinder.volume.drivers.nfs.NfsDriver", nfs_shares_config=missing))
    error = permanent_error_of_first_attempt(conf, "node1@nfs")
    assert error == f"NfsException: NFS config file at {missing} doesn't exist"


def test_lvm_without_the_lvm_tool_is_failed_permanent(tmp_path, monkeypatch):
    """As root the shell says 127; otherwise Cinder runs ``sudo cinder-rootwrap``, whose filter says 96,
    or finds no sudo at all (FileNotFoundError, next test)."""
    monkeypatch.setenv("PATH", path_without_lvm(tmp_path / "bin"))
    conf = write_conf(tmp_path, volume_conf("lvm", "cinder.volume.drivers.lvm.LVMVolumeDriver"))
    error = permanent_error_of_first_attempt(conf, "node1@lvm")
    assert error.startswith("ProcessExecutionError") and "lvm version" in error
    assert re.search(r"Exit code: (96|127)\b", error), error


def test_a_driver_whose_command_does_not_exist_is_failed_permanent(tmp_path, monkeypatch):
    """A PATH with nothing on it: Cinder's first command (``env``, or ``sudo`` when not root) is not found."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    conf = write_conf(tmp_path, volume_conf("lvm", "cinder.volume.drivers.lvm.LVMVolumeDriver"))
    error = permanent_error_of_first_attempt(conf, "node1@lvm")
    assert error.startswith("FileNotFoundError: [Errno 2] No such file or directory"), error


def test_a_volume_driver_path_that_does_not_exist_is_failed_permanent(tmp_path):
    conf = write_conf(tmp_path, volume_conf("array", "cinder.volume.drivers.nowhere.ArrayDriver"))
    error = permanent_error_of_first_attempt(conf, "node1@array")
    assert error.startswith("MissingDriverLibrary")
    assert "cinder.volume.drivers.nowhere.ArrayDriver" in error


def test_a_backend_whose_stats_say_down_is_down_in_the_list_and_at_3_49(tmp_path):
    conf = write_conf(tmp_path, volume_conf("array", "cinder_support.BackendDownDriver", volume_backend_name="gold"))
    engine, _ = supervise(conf)
    engine.advance(engine.settings.backend_stats_polling_interval + 1)
    row = engine.service("node1@array")
    assert (row.lifecycle.value, row.backend_state) == ("up", "down")
    assert [r.backend_state for r in engine.service_list() if r.host == "node1@array"] == ["down"]
    response = client(EngineSource(engine)).get(SERVICES, headers={**ADMIN, "OpenStack-API-Version": "volume 3.49"})
    assert response.status_code == 200
    listed = [s for s in response.json()["services"] if s["host"] == "node1@array"]
    assert [(s["binary"], s["backend_state"]) for s in listed] == [("cinder-volume", "down")]
    engine.shutdown()


def test_importing_the_cinder_support_patches_nothing():
    import eventlet.patcher

    import statecore.cinder  # noqa: F401

    assert not any(eventlet.patcher.is_monkey_patched(name) for name in ("thread", "socket", "select", "time", "os"))
    assert threading.Lock is threading._allocate_lock  # type: ignore[attr-defined]


def test_an_unsupported_driver_is_failed_permanent_unless_its_backend_enables_it(tmp_path):
    vzstorage = "cinder.volume.drivers.vzstorage.VZStorageDriver"  # SUPPORTED = False in Cinder 29
    engine, _ = supervise(write_conf(tmp_path, volume_conf("vz", vzstorage)))
    engine.advance(1)
    row = engine.service("node1@vz")
    assert row.lifecycle.value == "failed_permanent"
    assert row.last_error == (
        f"DriverNotSupported: Cinder driver {vzstorage!r} is unsupported;"
        " set enable_unsupported_driver = true in [vz] to run it"
    )
    engine.shutdown()
    shares = tmp_path / "vzstorage_shares"
    text = volume_conf("vz", vzstorage, enable_unsupported_driver="true", vzstorage_shares_config=str(shares))
    engine, _ = supervise(write_conf(tmp_path, text, "enabled.conf"))
    engine.advance(1)
    row = engine.service("node1@vz")  # Cinder's own setup ran, and said why it failed
    assert row.last_error == f"VzStorageException: VzStorage config file at {shares} doesn't exist."
    assert row.lifecycle.value == "failed_permanent"  # a RemoteFSException naming its missing shares file
    engine.shutdown()


def test_a_volume_driver_is_initialized_as_init_host_does(tmp_path):
    """After setup, _init_host asks for the capabilities and sets the copy throttle, then initializes."""
    conf = write_conf(tmp_path, volume_conf("array", "cinder_support.RecordingDriver", volume_backend_name="gold"))
    (spec,) = read_cinder_conf(conf)
    volume = CinderVolume(**dict(spec.driver_options or {}))
    volume.do_setup()
    volume.check_for_setup_error()
    assert volume.driver.calls == ["init_capabilities", "set_throttle", "set_initialized"]
    assert volume.driver.capabilities["pools"][0]["backend_state"] == "down"
    assert "properties" in volume.driver.capabilities


def test_a_cinder_driver_stuck_on_silent_storage_is_cut_off_by_the_init_timeout(tmp_path):
    """Real time: the S3 endpoint takes the connection and never answers; Cinder's driver waits in
    its own thread while statecore's timeout decides, within seconds."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        text = s3_conf(port, backup_periodic_initialization="true", backup_initialization_timeout="1")
        engine = Engine(classifier=cinder_classifier, sinks=[MemorySink()], store=MemoryStore())
        engine.add_services(read_cinder_conf(write_conf(tmp_path, text)))
        engine.start()
        try:
            seconds_until(lambda: engine.service("node1").last_error is not None, 10, "the attempt's verdict")
            row = engine.service("node1")
            assert row.lifecycle.value == "failed_recoverable"
            assert row.last_error is not None and row.last_error.startswith("InitTimeout")
        finally:
            engine.shutdown()
