"""Supervising Cinder's own drivers, unchanged, from an existing ``cinder.conf`` (the ``cinder`` extra).

statecore's core never imports this package; ``statecore run`` imports it only when its TOML file
names a ``cinder_config``. Importing it imports Cinder (3 to 9 s), never its ``cmd`` modules,
so nothing is monkey-patched.
"""

from __future__ import annotations

from statecore.cinder.classify import CINDER_RULES, Rule, cinder_classifier, make_classifier
from statecore.cinder.conf import read_cinder_conf
from statecore.cinder.drivers import CinderBackup, CinderVolume
from statecore.cinder.logs import route_cinder_logs

__all__ = ["CINDER_RULES", "CinderBackup", "CinderVolume", "Rule", "cinder_classifier", "make_classifier",
           "read_cinder_conf", "route_cinder_logs"]  # fmt: skip
