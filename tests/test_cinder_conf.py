"""Reading cinder.conf as cinder-volume and cinder-backup do, and ``statecore run``'s cinder_config."""

from __future__ import annotations

import logging
import re
import sys

import pytest
from cinder_support import write_conf

from statecore.cinder import CinderBackup, CinderVolume, read_cinder_conf, route_cinder_logs
from statecore.errors import ConfigError
from statecore.guards import retries_left
from statecore.live import ConfigFileError, build_engine, load_run_config
from statecore.settings import Settings
from statecore.store import MemoryStore

FLEET = """
[DEFAULT]
host = node1
storage_availability_zone = az1
enabled_backends = lvm, array
backup_driver = cinder.backup.drivers.s3.S3BackupDriver
reinit_driver_count = 5
periodic_interval = 20
service_down_time = 90
report_interval = 15
backend_stats_polling_interval = 30
backup_periodic_initialization = true
backup_initialization_timeout = 45
[backend_defaults]
enable_unsupported_driver = true
[database]
connection = sqlite://
[lvm]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
backend_availability_zone = az2
[array]
volume_driver = cinder.volume.drivers.nfs.NfsDriver
backend_host = shared
enable_unsupported_driver = false
"""


@pytest.fixture(autouse=True)
def cinder_logging_restored():
    """``statecore run`` routes Cinder's loggers into statecore's log; other tests keep logging's defaults."""
    cinder = logging.getLogger("cinder")
    handlers, level, propagate = list(cinder.handlers), cinder.level, cinder.propagate
    yield
    cinder.handlers[:], cinder.level, cinder.propagate = handlers, level, propagate


LVM = "cinder.volume.drivers.lvm.LVMVolumeDriver"
SHARED = {
    "reinit_driver_count": 5, "periodic_interval": 20, "service_down_time": 90, "report_interval": 15,
    "backend_stats_polling_interval": 30, "backup_periodic_initialization": True,
    "backup_initialization_timeout": 45,
}  # fmt: skip


def test_one_volume_service_per_backend_and_the_backup_service(tmp_path):
    specs = read_cinder_conf(write_conf(tmp_path, FLEET))
    found = {(s.host, s.binary, s.zone, s.driver) for s in specs}
    assert found == {
        ("node1@lvm", "volume", "az2", CinderVolume),
        ("shared@array", "volume", "az1", CinderVolume),  # backend_host overrides host, as in cinder-volume
        ("node1", "backup", "az1", CinderBackup),
    }
    drivers = {s.host: dict(s.driver_options or {}) for s in specs}
    assert drivers["node1@lvm"] == {"backend": "lvm", "driver": "cinder.volume.drivers.lvm.LVMVolumeDriver",
                                    "host": "node1@lvm", "enable_unsupported": True, "cluster_name": None}  # fmt: skip
    assert drivers["node1"] == {"driver": "cinder.backup.drivers.s3.S3BackupDriver"}


def test_shared_options_map_to_statecore_and_enable_unsupported_per_backend(tmp_path):
    options = {s.host: dict(s.options or {}) for s in read_cinder_conf(write_conf(tmp_path, FLEET))}
    assert options["node1@lvm"] == {**SHARED, "enable_unsupported_driver": True}  # from [backend_defaults]
    assert options["shared@array"] == {**SHARED, "enable_unsupported_driver": False}  # its own section wins
    assert options["node1"] == SHARED


def test_options_the_file_does_not_set_are_left_to_statecore(tmp_path):
    text = "[DEFAULT]\nhost = node2\nenabled_backends = lvm\n[lvm]\nvolume_driver = x.Y\n"
    (spec,) = read_cinder_conf(write_conf(tmp_path, text))
    assert (spec.host, dict(spec.options or {})) == ("node2@lvm", {})


def test_a_file_without_services_or_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="names no service: set enabled_backends or backup_driver"):
        read_cinder_conf(write_conf(tmp_path, "[DEFAULT]\nhost = node1\n"))
    with pytest.raises(ConfigError, match=r"cinder config file '.*missing.conf' does not exist"):
        read_cinder_conf(tmp_path / "missing.conf")


def run_toml(tmp_path, body: str):
    path = tmp_path / "run.toml"
    path.write_text(f'store = "memory"\nnotifications = ""\n{body}', encoding="utf-8")
    return load_run_config(path)


def test_run_reads_cinder_config_relative_to_its_toml_and_keeps_its_own_services(tmp_path):
    (tmp_path / "etc").mkdir()
    write_conf(tmp_path / "etc", FLEET)
    body = (
        'cinder_config = "etc/cinder.conf"\n[settings]\ninit_timeout = 7\n[[services]]\nhost = "node9@x"\n'
        'binary = "volume"\ndriver = "statecore.drivers_builtin:TcpVolumeDriver"\n'
        'driver_options = { host = "127.0.0.1", port = 1 }\n'
    )
    config, base = run_toml(tmp_path, body)
    engine = build_engine(config, base, store=MemoryStore())
    hosts = sorted(row.host for row in engine.service_list())
    assert hosts == ["node1", "node1@lvm", "node9@x", "shared@array"]
    from statecore.cinder import cinder_classifier

    assert engine.classifier is cinder_classifier


@pytest.mark.parametrize(
    ("line", "refusal"),
    [
        ("backend_stats_polling_interval = 2", "backend_stats_polling_interval .* greater than or equal to 3"),
        (
            "reinit_driver_count = 0",
            "reinit_driver_count = 0: Cinder then never re-initializes a failed driver,"
            " but statecore cannot turn volume retries off \\(its 0 means unlimited\\)",
        ),
        ("reinit_driver_count = -1", "reinit_driver_count = -1: Cinder then never re-initializes"),
        ("periodic_interval = often", "periodic_interval .* not valid"),
    ],
)
def test_run_names_a_cinder_option_that_cinder_or_statecore_refuses(tmp_path, line, refusal):
    name = line.split(" ")[0]
    write_conf(tmp_path, "\n".join(line if row.startswith(f"{name} =") else row for row in FLEET.splitlines()))
    config, base = run_toml(tmp_path, 'cinder_config = "cinder.conf"\n')
    with pytest.raises(ConfigFileError, match=f"^cinder_config: .*{refusal}"):
        build_engine(config, base, store=MemoryStore())


def test_reinit_driver_count_keeps_cinders_meaning_retries_after_the_first_attempt(tmp_path):
    """Cinder's N re-inits after the first attempt are statecore's N retries: 1 + N attempts in all."""
    text = FLEET.replace("reinit_driver_count = 5", "reinit_driver_count = 1")
    (volume, *_) = read_cinder_conf(write_conf(tmp_path, text))
    settings = Settings().with_overrides(volume.options)
    assert [retries_left("volume", settings, attempt) for attempt in (1, 2)] == [1, 0]


def test_backup_driver_init_check_interval_is_the_backup_services_retry_period(tmp_path):
    """Cinder's backup manager retries its driver's setup every backup_driver_init_check_interval;
    periodic_interval (Cinder's periodic tasks) stays for the volume services."""
    text = FLEET.replace("periodic_interval = 20", "periodic_interval = 20\nbackup_driver_init_check_interval = 7")
    options = {s.binary: dict(s.options or {}) for s in read_cinder_conf(write_conf(tmp_path, text))}
    assert (options["backup"]["periodic_interval"], options["volume"]["periodic_interval"]) == (7, 20)
    with pytest.raises(ConfigError, match=r"backup_driver_init_check_interval .* greater than or equal to 5"):
        read_cinder_conf(write_conf(tmp_path, text.replace("= 7", "= 4")))  # Cinder's own minimum


def test_a_cluster_names_each_backend_and_refuses_drivers_without_active_active(tmp_path):
    text = FLEET.replace("host = node1", "host = node1\ncluster = east")
    drivers = {s.host: dict(s.driver_options or {}) for s in read_cinder_conf(write_conf(tmp_path, text))}
    assert [drivers[host]["cluster_name"] for host in ("node1@lvm", "shared@array")] == ["east@lvm", "east@array"]
    refusal = "Active-Active configuration is not currently supported by driver"
    with pytest.raises(ConfigError, match=re.escape(f"{refusal} '{LVM}' (cluster 'east@lvm')")):
        CinderVolume(**drivers["node1@lvm"])
    rbd = CinderVolume("ceph", "cinder.volume.drivers.rbd.RBDDriver", "node1@ceph", cluster_name="east@ceph")
    assert rbd.cluster_name == "east@ceph"  # RBD supports active-active


def test_run_without_services_nor_cinder_config_is_refused(tmp_path):
    with pytest.raises(ConfigFileError, match="no service: add \\[\\[services\\]\\] or cinder_config"):
        run_toml(tmp_path, "")


def test_run_without_the_extra_says_which_to_install(tmp_path, monkeypatch):
    write_conf(tmp_path, FLEET)
    config, base = run_toml(tmp_path, 'cinder_config = "cinder.conf"\n')
    for name in [name for name in sys.modules if name == "statecore.cinder" or name.startswith("statecore.cinder.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cinder", None)  # as if the extra were not installed
    with pytest.raises(ConfigFileError) as raised:
        build_engine(config, base, store=MemoryStore())
    assert str(raised.value) == 'cinder_config needs the cinder extra: pip install "statecore[cinder]"'


def test_cinder_log_records_are_one_line_each_in_statecores_log(caplog_loguru):
    route_cinder_logs()
    route_cinder_logs()  # twice: still one handler
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        logging.getLogger("cinder.backup.drivers.s3").exception("Cannot list s3 buckets\nduring initialization.")
    assert caplog_loguru.messages == [
        "ERROR cinder.backup.drivers.s3: Cannot list s3 buckets during initialization."
        " (ConnectionRefusedError: [Errno 111] Connection refused)\n"
    ]
