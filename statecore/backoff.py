"""Waits before a retry: pure functions, so the schedule can be tested and documented exactly.

Retry k (k = 1, 2, ...) waits 2^(k-1) seconds, capped; jitter follows the usual
AWS variants. A seeded random source makes a jittered schedule reproducible.
"""

from __future__ import annotations

import random

from statecore.settings import Jitter


def base_delay(retry: int, cap: float) -> float:
    if retry < 1:
        raise ValueError(f"retry numbers start at 1, got {retry}")
    if retry > 64:  # 2**64 s is far beyond any cap; avoid float overflow
        return cap
    return min(cap, float(2 ** (retry - 1)))


def backoff_delay(retry: int, cap: float, jitter: Jitter, rng: random.Random, previous: float | None) -> float:
    """The wait before retry ``retry``; ``previous`` is the last wait (decorrelated jitter needs it)."""
    base = base_delay(retry, cap)
    if jitter == "none":
        return base
    if jitter == "full":
        return rng.uniform(0, base)
    if jitter == "equal":
        return base / 2 + rng.uniform(0, base / 2)
    return min(cap, rng.uniform(1.0, max(1.0, (previous or 1.0) * 3)))


def retry_rng(seed: int | None, service_id: str, retry: int) -> random.Random:
    """A fresh source per (service, retry): reproducible with a seed, and no state kept per service."""
    return random.Random(f"{seed}/{service_id}/{retry}") if seed is not None else _UNSEEDED


_UNSEEDED = random.Random()
"""Unseeded jitter shares one generator: seeding a new one from ``os.urandom`` cost 12 µs a retry."""
