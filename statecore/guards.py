"""Guard predicates: pure functions of a ``Context``, one set per binary.

The rows of ``table.py`` name a guard; what it means depends on the binary
(a volume retries with a bounded backoff budget, a backup retries periodically
or not at all). Each predicate is complete on its own, so rows of one
(source, event) never overlap, whatever order they are tried in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from statecore.table import Binary, Guard

if TYPE_CHECKING:
    from statecore.settings import Settings


class Context(NamedTuple):
    """What a guard may look at: the service's counters, its options, the event's error, the time.

    A named tuple: every event builds one, and the dispatcher builds it without the Python-level
    ``__new__`` (``tuple.__new__``), two thirds of what a slotted dataclass's ``__init__`` costs.
    """

    settings: Settings
    attempt: int
    last_ok: datetime
    now: datetime
    initialized: bool
    error: BaseException | None = None
    unrecoverable: bool = False

    @property
    def grace_open(self) -> bool:
        """BEHAVIOR.md section 5: alive while ``now - last_ok <= service_down_time``. The grace window
        is that same interval, so a failure at exactly the deadline is still inside it; the expiry
        due at that instant runs after it (timers.SAME_INSTANT_ORDER) and takes the service down."""
        return self.now <= self.last_ok + self.settings.down_window


Predicate = Callable[[Context], bool]


def volume_retry_allowed(ctx: Context, attempt: int) -> bool:
    limit = ctx.settings.reinit_driver_count
    return limit == 0 or attempt < 1 + limit


def backup_retry_allowed(ctx: Context, attempt: int) -> bool:
    return ctx.settings.backup_periodic_initialization


def retries_left(binary: Binary, settings: Settings, attempt: int) -> int | None:
    """Retries still allowed in this budget; None means unlimited."""
    if binary == "backup":
        return None if settings.backup_periodic_initialization else 0
    if settings.reinit_driver_count == 0:
        return None
    return max(0, 1 + settings.reinit_driver_count - attempt)


def _predicates(retry_allowed: Callable[[Context, int], bool]) -> dict[Guard, Predicate]:
    def recoverable_retry(ctx: Context) -> bool:
        return not ctx.unrecoverable and retry_allowed(ctx, ctx.attempt)

    return {
        Guard.DRIVER_USABLE: lambda ctx: ctx.error is None,
        Guard.DRIVER_UNUSABLE: lambda ctx: ctx.error is not None,
        Guard.UNRECOVERABLE: lambda ctx: ctx.unrecoverable,
        Guard.NO_RETRY: lambda ctx: not ctx.unrecoverable and not retry_allowed(ctx, ctx.attempt),
        Guard.RETRY_GRACE_OPEN: lambda ctx: recoverable_retry(ctx) and ctx.grace_open,
        Guard.RETRY_GRACE_EXPIRED: lambda ctx: recoverable_retry(ctx) and not ctx.grace_open,
        Guard.FRESH_RETRY: lambda ctx: retry_allowed(ctx, 1),
        Guard.NO_FRESH_RETRY: lambda ctx: not retry_allowed(ctx, 1),
        Guard.DRIVER_INITIALIZED: lambda ctx: ctx.initialized,
    }


PREDICATES: dict[Binary, dict[Guard, Predicate]] = {
    "volume": _predicates(volume_retry_allowed),
    "backup": _predicates(backup_retry_allowed),
}
