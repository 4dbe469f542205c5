"""Asking a driver how it is: ``is_working()`` and the ``backend_state`` of its volume stats.

Both are driver calls that may raise or return nonsense; neither may take the
engine down, so both turn every failure into "not working" / "down" and a
logged warning, as BEHAVIOR.md section 8 asks.
"""

from __future__ import annotations

from collections.abc import Mapping

from loguru import logger

from statecore.drivers import Driver


def is_working(driver: Driver | None) -> bool:
    check = getattr(driver, "is_working", None)
    if check is None:
        return driver is not None
    try:
        return bool(check())
    except Exception as error:
        logger.warning("is_working() raised {}; treating the driver as not working", error)
        return False


def backend_state(host: str, driver: Driver | None) -> str:
    """``up`` when the stats lack the key; anything but up/down, or a raising call, is ``down``."""
    stats_of = getattr(driver, "get_volume_stats", None)
    if stats_of is None:
        return "up"
    try:
        stats = stats_of(refresh=True)
    except Exception as error:
        logger.warning("{}: get_volume_stats failed ({}); backend_state is down", host, error)
        return "down"
    value = stats.get("backend_state", "up") if isinstance(stats, Mapping) else None
    if value not in ("up", "down"):
        logger.warning("{}: malformed backend_state {!r} in stats; reporting down", host, value)
        return "down"
    return value
