"""Cinder's drivers behind statecore's driver protocol, built and called as Cinder's managers do.

A volume driver is built as ``VolumeManager.__init__`` builds it (``configuration`` for the
backend's group, ``host``, no cluster, no active backend) and initialized as ``init_host`` does:
``supported`` against the backend's ``enable_unsupported_driver`` (when statecore loads the
service: an unsupported driver never starts), then ``do_setup(admin context)`` and
``check_for_setup_error()``, then ``set_initialized()``; a retry calls them again on the same
driver, as Cinder's reinit loop does. A backup driver is built afresh with an admin context for
every attempt and asked ``check_for_setup_error()``, as ``BackupManager._setup_backup_driver``
does. The driver class is imported when statecore loads the service (cinder-volume fails at that
point too); the instance is built inside the first attempt, so a constructor that talks to
storage runs under statecore's init timeout and attempt threads like any driver call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statecore.cinder.imports import configuration, context, importutils, volume_manager
from statecore.errors import DriverNotSupported, MissingDriverLibrary


def _driver_class(path: str) -> Any:
    try:
        return importutils.import_class(path)
    except ImportError as error:
        raise MissingDriverLibrary(f"Cinder driver {path!r} cannot be imported: {error}") from error


class CinderVolume:
    """One backend of ``enabled_backends``; ``backend_state`` comes from its ``get_volume_stats``."""

    def __init__(self, backend: str, driver: str, host: str, enable_unsupported: bool = False) -> None:
        self.backend, self.path, self.host = backend, driver, host
        self._class = _driver_class(driver)
        # The class's SUPPORTED is what BaseVD.supported returns; it is known before the driver is built.
        if not getattr(self._class, "SUPPORTED", True) and not enable_unsupported:
            raise DriverNotSupported(
                f"Cinder driver {driver!r} is unsupported;"
                f" set enable_unsupported_driver = true in [{backend}] to run it"
            )
        self.driver: Any = None

    def do_setup(self) -> None:
        if self.driver is None:
            config = configuration.Configuration(volume_manager.volume_backend_opts, config_group=self.backend)
            # VolumeManager passes is_vol_db_empty from Cinder's database; statecore does not read it,
            # so it says "not empty", which makes a driver skip first-start shortcuts and nothing more.
            self.driver = self._class(
                configuration=config, host=self.host, cluster_name=None, is_vol_db_empty=False, active_backend_id=None
            )
        self.driver.do_setup(context.get_admin_context())

    def check_for_setup_error(self) -> None:
        self.driver.check_for_setup_error()
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
