"""A real Cinder driver class with its storage replaced, for the one case this machine cannot stage.

No array here can lose its controllers on cue, so the stats test uses Cinder's LVM driver with a
volume group taken as present and a backend that reports ``backend_state: down`` in its stats,
the way drivers of arrays report an unreachable backend. Everything else (construction,
configuration group, ``get_volume_stats(refresh=True)``) is Cinder's own code.
"""

from __future__ import annotations

from typing import Any

from statecore.cinder.imports import importutils

lvm = importutils.import_module("cinder.volume.drivers.lvm")


class BackendDownDriver(lvm.LVMVolumeDriver):  # type: ignore[misc]
    def check_for_setup_error(self) -> None:
        """The volume group is taken as present (this machine has none)."""

    def _update_volume_stats(self) -> None:
        stats: dict[str, Any] = {
            "volume_backend_name": self.backend_name,
            "vendor_name": "Open Source",
            "driver_version": self.VERSION,
            "storage_protocol": "iSCSI",
            "pools": [],
            "backend_state": "down",
        }
        self._stats = stats
