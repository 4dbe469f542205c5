"""Asking a driver how it is: ``is_working()`` and the ``backend_state`` of its volume stats.

Both are driver calls that may raise or return nonsense; neither may take the
engine down, so both turn every failure into "not working" / "down" and a
logged warning, as BEHAVIOR.md section 8 asks.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

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


def _reported_state(stats: Mapping[str, Any]) -> Any:
    """Where Cinder's API reads it: each pool's capabilities, the last pool listed winning (its map of
    backend to state is overwritten pool by pool); stats without pools are the one pool themselves."""
    pools = stats.get("pools")
    if isinstance(pools, list) and pools and all(isinstance(pool, Mapping) for pool in pools):
        return pools[-1].get("backend_state", "up")
    return stats.get("backend_state", "up")


def backend_state(host: str, driver: Driver | None) -> str:
    """``up`` when the stats lack the key; anything but up/down, or a raising call, is ``down``."""
    stats_of = getattr(driver, "get_volume_stats", None)
    if stats_of is None:
        return "up"
    try:
        stats = stats_of(refresh=True)
        value = _reported_state(stats) if type(stats) is dict or isinstance(stats, Mapping) else None
    except Exception as error:  # the call, or a mapping of the driver's own whose get raises
        logger.warning("{}: get_volume_stats failed ({}); backend_state is down", host, error)
        return "down"
    if value not in ("up", "down"):
        logger.warning("{}: malformed backend_state {!r} in stats; reporting down", host, value)
        return "down"
    return value if type(value) is str else str(value)


class Prober:
    """Asks a group's drivers ``is_working()`` without letting one hung driver stall the group.

    Real time: the calls run in a thread per round and the job waits at most ``limit`` seconds;
    drivers that have not answered by then count as not working, and the one stuck in its call
    is skipped by later rounds until that call returns. Virtual time: plain calls, in order.
    """

    def __init__(self, *, threaded: bool) -> None:
        self.threaded = threaded
        self._stuck: set[str] = set()
        self._lock = threading.Lock()

    def working(self, services: Sequence[Any], limit: float) -> list[Any]:
        if not self.threaded:
            try:  # every driver has is_working and none raises: the common case, without a call per driver
                return [s for s in services if s.driver.is_working()]
            except Exception:  # one lacks it or raised: ask each carefully (and log the one that raised)
                return [s for s in services if is_working(s.driver)]
        with self._lock:
            candidates = [s for s in services if s.id not in self._stuck]
        answered: list[Any] = []
        current: list[str | None] = [None]
        done = threading.Event()

        def round_() -> None:
            for service in candidates:
                current[0] = service.id
                ok = is_working(service.driver)
                with self._lock:
                    if service.id in self._stuck:  # its round gave up on it; it is back for the next one
                        self._stuck.discard(service.id)
                        return
                    if ok:
                        answered.append(service)
            done.set()

        threading.Thread(target=round_, name="statecore-probe", daemon=True).start()
        if done.wait(limit):
            return answered
        with self._lock:
            if current[0] is not None:
                self._stuck.add(current[0])
                logger.warning("is_working() of {} did not answer within {:g} s; counted as not working",
                               current[0], limit)  # fmt: skip
            return list(answered)
