"""Reading an existing ``cinder.conf`` with oslo.config, the way cinder-volume and cinder-backup do.

``[DEFAULT] host`` names the node; each name in ``enabled_backends`` is a volume service
``host@backend`` (``backend_host`` in its section overrides the host, as in cinder-volume) whose
driver is the section's ``volume_driver``; a ``backup_driver`` set in the file makes the backup
service ``host``. Cinder's options that statecore shares become the services' statecore options
(docs/cinder.md has the table), taken only where the file sets them, so an unset one leaves
statecore's own ``[settings]`` (whose defaults are Cinder's) in charge.

oslo.config keeps one global configuration (``cfg.CONF``) that Cinder's drivers read directly, so
one process supervises one cinder.conf at a time: reading another replaces it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from statecore.cinder.drivers import CinderBackup, CinderVolume
from statecore.cinder.imports import backup_manager, cfg, configuration, volume_driver, volume_manager
from statecore.errors import ConfigError
from statecore.service import ServiceSpec

SHARED = (
    "reinit_driver_count", "periodic_interval", "service_down_time", "report_interval",
    "backend_stats_polling_interval", "backup_periodic_initialization", "backup_initialization_timeout",
)  # fmt: skip
"""Cinder's ``[DEFAULT]`` options with a statecore setting of the same name (docs/cinder.md: meanings)."""
BACKUP_ONLY = {"backup_driver_init_check_interval": "periodic_interval"}
"""Cinder's backup manager retries its driver's setup every ``backup_driver_init_check_interval``:
statecore's backup retry period, for the backup service only (it wins over ``periodic_interval``)."""
PER_BACKEND = ("enable_unsupported_driver",)
"""Options Cinder reads from the backend's own section (then ``[backend_defaults]``)."""

_SPEC_ONLY = (
    cfg.BoolOpt("backup_periodic_initialization", help="the backup spec's periodic initialization"),
    cfg.IntOpt("backup_initialization_timeout", min=1, help="the backup spec's bound of one attempt"),
)
"""Options of the backup spec that cinder 29 does not define: registered so a file may set them."""
_BACKEND_HOST = cfg.StrOpt("backend_host", help="Backend override of host value.")
_CLUSTER = cfg.StrOpt("cluster", help="Name of this cluster.")
"""cinder-volume's ``cinder.cmd.volume`` defines it; statecore never imports that module."""


def read_cinder_conf(path: Path) -> list[ServiceSpec]:
    """The services ``path`` describes, with their options; raises ConfigError naming the problem."""
    if not path.is_file():
        raise ConfigError(f"cinder config file {str(path)!r} does not exist")
    try:
        specs = _services(path)
    except (cfg.Error, ValueError) as error:  # a value oslo.config refuses once it is read
        raise ConfigError(f"cinder config file {str(path)!r}: {error}") from None
    if not specs:
        raise ConfigError(f"cinder config file {str(path)!r} names no service: set enabled_backends or backup_driver")
    return specs


def _services(path: Path) -> list[ServiceSpec]:
    for option in (*_SPEC_ONLY, _CLUSTER):
        _register(option, None)
    cfg.CONF(args=[], project="cinder", default_config_files=[str(path)])
    conf = cfg.CONF
    shared = {name: conf[name] for name in SHARED if _set_in_file(conf, name)}
    _refuse_no_reinit(shared.get("reinit_driver_count"))
    specs = [_volume(conf, backend, shared) for backend in filter(None, conf.enabled_backends or [])]
    if _set_in_file(conf, "backup_driver"):
        name = backup_manager.MAPPING.get(conf.backup_driver, conf.backup_driver)
        zone = conf.storage_availability_zone
        options = shared | {ours: conf[theirs] for theirs, ours in BACKUP_ONLY.items() if _set_in_file(conf, theirs)}
        specs.append(ServiceSpec(conf.host, "backup", CinderBackup, zone, options, {"driver": name}))
    return specs


def _refuse_no_reinit(count: int | None) -> None:
    """Cinder re-initializes a failed driver ``reinit_driver_count`` times after the first attempt,
    statecore retries it that many times: the same for 1 and more. Cinder's 0 (or less) means no
    re-init at all, statecore's 0 means no limit, and statecore has no "never retry" for volumes."""
    if count is not None and count <= 0:
        raise ConfigError(
            f"reinit_driver_count = {count}: Cinder then never re-initializes a failed driver, but statecore"
            " cannot turn volume retries off (its 0 means unlimited); set it to 1 or more (the retries after"
            " the first attempt) or remove it"
        )


def _volume(conf: Any, backend: str, shared: dict[str, Any]) -> ServiceSpec:
    """One backend as VolumeManager sees it: its own group, falling back to ``[backend_defaults]``."""
    if backend not in conf:
        conf.register_group(cfg.OptGroup(backend))
    _register(_BACKEND_HOST, backend)
    config = configuration.Configuration(volume_manager.volume_backend_opts, config_group=backend)
    config.append_config_values(volume_driver.volume_opts)  # where enable_unsupported_driver lives
    host = f"{conf[backend].backend_host or conf.host}@{backend}"
    cluster = (conf.cluster or "").strip()  # as cinder-volume's main(): empty means none
    zone = config.safe_get("backend_availability_zone") or conf.storage_availability_zone
    options = dict(shared)
    options.update({name: config.safe_get(name) for name in PER_BACKEND if _set_for_backend(conf, backend, name)})
    driver = volume_manager.MAPPING.get(config.volume_driver, config.volume_driver)
    unsupported = bool(config.safe_get("enable_unsupported_driver"))  # as Cinder reads it for this backend
    loading = {"backend": backend, "driver": driver, "host": host, "enable_unsupported": unsupported,
               "cluster_name": f"{cluster}@{backend}" if cluster else None}  # fmt: skip
    return ServiceSpec(host, "volume", CinderVolume, zone, options, loading)


def _register(option: Any, group: str | None) -> None:
    with contextlib.suppress(cfg.DuplicateOptError):  # Cinder defines it already (a later release may)
        cfg.CONF.register_opt(option, group=group)


def _set_in_file(conf: Any, name: str, group: str | None = None) -> bool:
    try:
        found = conf.get_location(name, group)  # None: an option without default, unset
    except cfg.NoSuchOptError:
        return False
    return found is not None and found.location is cfg.Locations.user


def _set_for_backend(conf: Any, backend: str, name: str) -> bool:
    return _set_in_file(conf, name, backend) or _set_in_file(conf, name, configuration.SHARED_CONF_GROUP)
