"""Cinder's drivers behind statecore's driver protocol, built and called as Cinder's managers do.

A volume driver is built as ``VolumeManager.__init__`` builds it (``configuration`` for the
backend's group, ``host``, ``cluster_name`` from ``[DEFAULT] cluster``, no active backend) and
initialized as ``init_host`` does: ``supported`` against the backend's ``enable_unsupported_driver``
and, in a cluster, ``SUPPORTS_ACTIVE_ACTIVE`` (when statecore loads the service: such a driver
never starts), then ``do_setup(admin context)`` and ``check_for_setup_error()``, then
``init_capabilities()``, ``set_throttle()`` and ``set_initialized()``; a retry calls them again on
the same driver, as Cinder's reinit loop does. A backup driver is built afresh with an admin context for
every attempt and asked ``check_for_setup_error()``, as ``BackupManager._setup_backup_driver``
does. The driver class is imported when statecore loads the service (cinder-volume fails at that
point too); the instance is built inside the first attempt, so a constructor that talks to
storage runs under statecore's init timeout and attempt threads like any driver call.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from statecore.attempts import run_driver
from statecore.cinder.imports import configuration, context, importutils, volume_manager
from statecore.errors import ConfigError, DriverNotSupported, InitTimeout, MissingDriverLibrary, StatecoreError


def _driver_class(path: str) -> Any:
    try:
        return importutils.import_class(path)
    except ImportError as error:
        raise MissingDriverLibrary(f"Cinder driver {path!r} cannot be imported: {error}") from error


class CinderVolume:
    """One backend of ``enabled_backends``; ``backend_state`` comes from its ``get_volume_stats``."""

    def __init__(
        self, backend: str, driver: str, host: str, enable_unsupported: bool = False, cluster_name: str | None = None
    ) -> None:
        self.backend, self.path, self.host, self.cluster_name = backend, driver, host, cluster_name
        self._class = _driver_class(driver)
        # The class's SUPPORTED is what BaseVD.supported returns; it is known before the driver is built.
        if not getattr(self._class, "SUPPORTED", True) and not enable_unsupported:
            raise DriverNotSupported(
                f"Cinder driver {driver!r} is unsupported;"
                f" set enable_unsupported_driver = true in [{backend}] to run it"
            )
        if cluster_name and not getattr(self._class, "SUPPORTS_ACTIVE_ACTIVE", False):  # VolumeManager refuses it
            raise ConfigError(
                f"Active-Active configuration is not currently supported by driver {driver!r}"
                f" (cluster {cluster_name!r}); remove cluster from [DEFAULT] to run [{backend}]"
            )
        self.driver: Any = None

    def do_setup(self) -> None:
        if self.driver is None:
            config = configuration.Configuration(volume_manager.volume_backend_opts, config_group=self.backend)
            # VolumeManager passes is_vol_db_empty from Cinder's database; statecore does not read it,
            # so it says "not empty", which makes a driver skip first-start shortcuts and nothing more.
            self.driver = self._class(
                configuration=config,
                host=self.host,
                cluster_name=self.cluster_name,
                is_vol_db_empty=False,
                active_backend_id=None,
            )
        self.driver.do_setup(context.get_admin_context())

    def check_for_setup_error(self) -> None:
        self.driver.check_for_setup_error()
        # _init_host's next driver calls (what it does between them reads Cinder's database: not here).
        self.driver.init_capabilities()
        self.driver.set_throttle()
        self.driver.set_initialized()

    def is_working(self) -> bool:
        """``VolumeManager.is_working``: the driver initialized."""
        return self.driver is not None and bool(self.driver.initialized)

    def get_volume_stats(self, refresh: bool = False) -> Mapping[str, Any]:
        """Asked only of an initialized driver, as ``_report_driver_status`` does; else ``down``."""
        if not self.is_working():
            raise RuntimeError(f"[{self.backend}] driver is not initialized")
        stats: Mapping[str, Any] = self.driver.get_volume_stats(refresh=refresh)
        return stats


class CinderBackup:
    """The ``backup_driver`` of ``[DEFAULT]``; a backup driver has no stats and no ``supported`` flag."""

    def __init__(self, driver: str) -> None:
        self.path = driver
        self._class = _driver_class(driver)
        self.driver: Any = None
        self.initialized = False

    def do_setup(self) -> None:
        self.initialized = False
        self.driver = self._class(context=context.get_admin_context())

    def check_for_setup_error(self) -> None:
        self.driver.check_for_setup_error()
        self.initialized = True

    def is_working(self) -> bool:
        """``BackupManager.is_working``: the last setup passed."""
        return self.initialized


def set_up_within(driver: Any, timeout: float) -> None:
    """One attempt's calls, bounded like one: ``statecore backend-state`` asks a Cinder driver that no
    engine has set up, and its stats need an initialized driver. Raises a StatecoreError saying why not."""
    failure: list[BaseException | None] = []  # the driver's own error, reported as the line's reason
    thread = threading.Thread(
        target=lambda: failure.append(run_driver(driver)), name="statecore-cinder-setup", daemon=True
    )
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise InitTimeout(f"driver setup did not finish within {timeout:g} s (init_timeout)")
    if failure and (error := failure[0]) is not None:
        raise StatecoreError(f"{type(error).__name__}: {error}")
