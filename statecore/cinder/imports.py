"""Cinder's library parts, imported once, the way its services import them, and nothing more.

cinder-volume and cinder-backup call ``eventlet.monkey_patch()`` in their ``cinder.cmd`` modules;
statecore never imports those, so its threads, locks and sockets stay the standard library's.
Cinder's dependencies warn about their own deprecations while they load; those warnings say
nothing to a statecore operator, so they are silenced for the import only. eventlet's warning at
every ``fork()`` (each command a driver runs, such as ``lvm``) is silenced by its exact text.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.filterwarnings("ignore", r"\s*Eventlet is deprecated")  # eventlet's own class, not a DeprecationWarning
    from cinder import objects

    objects.register_all()  # before the managers: their annotations name Cinder's versioned objects
    from cinder import context, exception
    from cinder.backup import manager as backup_manager
    from cinder.volume import configuration
    from cinder.volume import driver as volume_driver
    from cinder.volume import manager as volume_manager
    from oslo_concurrency import processutils
    from oslo_config import cfg
    from oslo_utils import importutils

warnings.filterwarnings("ignore", r"Using fork\(\) is a bad idea", DeprecationWarning, r"eventlet")

__all__ = [
    "backup_manager",
    "cfg",
    "configuration",
    "context",
    "exception",
    "importutils",
    "processutils",
    "volume_driver",
    "volume_manager",
]
