"""A backup driver for a directory, typically a share mounted by the host.

A share that is not mounted yet is the backup spec's own example of storage
that appears late, so every "not there / not writable" is recoverable; only a
relative path is a configuration error, since it would silently resolve against
whatever directory the service was started in.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from statecore.errors import ConfigError

PROBE_PREFIX = ".statecore-probe-"


class PosixBackupDriver:
    """Backups under ``path``; ready when the directory exists and a file can be created in it."""

    supported = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not os.path.isabs(path):
            raise ConfigError(f"backup path {str(path)!r} must be absolute")
        self.path = Path(path)

    def do_setup(self) -> None:
        if not self.path.is_dir():
            raise FileNotFoundError(f"backup directory {self.path} does not exist (share not mounted yet?)")

    def check_for_setup_error(self) -> None:
        """``os.access`` first (cheap, and right for a non-root service); then a real write, because
        a read-only mount or an exhausted quota only shows when something is written."""
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise PermissionError(f"backup directory {self.path} is not writable by this service")
        with tempfile.NamedTemporaryFile(dir=self.path, prefix=PROBE_PREFIX):
            pass

    def is_working(self) -> bool:
        """The same checks as an attempt: a share unmounted under a running service is lost."""
        try:
            self.do_setup()
            self.check_for_setup_error()
        except OSError:
            return False
        return True
