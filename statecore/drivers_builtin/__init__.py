"""Drivers that talk to real things, usable by import path from a config file.

``statecore.drivers_builtin:PosixBackupDriver`` keeps backups under a directory
(an NFS or local mount); ``statecore.drivers_builtin:TcpVolumeDriver`` checks a
storage array's management endpoint over TCP. Both are small on purpose: they
are the reference for what an embedding service's own drivers must do.
"""

from statecore.drivers_builtin.posix import PosixBackupDriver
from statecore.drivers_builtin.tcp import TcpVolumeDriver

__all__ = ["PosixBackupDriver", "TcpVolumeDriver"]
