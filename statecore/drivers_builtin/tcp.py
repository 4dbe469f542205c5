"""A volume driver for an array reached over TCP (its management or data endpoint).

``do_setup`` fails recoverably while the endpoint refuses connections (the
array is still booting), and the stats report ``backend_state`` from a fresh
connection each poll, so the service list shows an array that went away while
the service itself stays up, as the backend-state spec asks.
"""

from __future__ import annotations

import socket
from typing import Any

from statecore.errors import ConfigError


class TcpVolumeDriver:
    """Volumes on an array at ``host:port``; loopback in tests, the array's address in production."""

    supported = True
    driver_version = "1.0"

    def __init__(self, host: str, port: int, timeout: float = 1.0) -> None:
        if not isinstance(host, str) or not host:
            raise ConfigError(f"host {host!r} must be a non-empty host name or address")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError(f"port {port!r} must be an integer from 1 to 65535")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise ConfigError(f"timeout {timeout!r} must be a number of seconds > 0")
        self.host, self.port, self.timeout = host, port, float(timeout)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def do_setup(self) -> None:
        """Recoverable ConnectionError while the endpoint refuses or does not answer."""
        try:
            self._connect()
        except OSError as error:
            raise ConnectionError(f"array at {self.endpoint} not reachable: {error}") from error

    def check_for_setup_error(self) -> None:
        """do_setup's connection is the whole check."""

    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        """Cinder-style stats; capacity is unknown to a driver that only checks reachability."""
        try:
            self._connect()
            state = "up"
        except OSError:
            state = "down"
        return {
            "volume_backend_name": f"tcp-{self.endpoint}",
            "vendor_name": "statecore",
            "driver_version": self.driver_version,
            "storage_protocol": "tcp",
            "total_capacity_gb": "unknown",
            "free_capacity_gb": "unknown",
            "backend_state": state,
        }

    def _connect(self) -> None:
        with socket.create_connection((self.host, self.port), timeout=self.timeout):
            pass
