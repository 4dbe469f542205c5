"""What a transition asks to happen once it is committed, as data.

A row's actions (actions.py) change the service's counters at once and return
these values; nothing runs until the store has taken the transition, and then
``Jobs.run`` (jobs.py) carries them out. Being data, a step's effects can be
asserted in a test without a scheduler (tests/test_dispatch.py), and the
actions need no reference to the engine that will run them.

They are named tuples: every transition makes one or more, and a tuple is the
cheapest immutable value Python builds.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from statecore.timers import JobKind


class ArmJob(NamedTuple):
    """Arm the service's one-shot ``kind`` job (``retry`` or ``timeout``) at ``when``; ``token``
    is the service's token at arming, so a firing that a later move made stale does nothing."""

    kind: JobKind
    sid: str
    when: datetime
    token: int


class CancelJob(NamedTuple):
    """Cancel the service's ``kind`` job, if it is armed."""

    kind: JobKind
    sid: str


class Launch(NamedTuple):
    """Run one init attempt (``do_setup``, ``check_for_setup_error``) off the engine's path."""

    sid: str
    token: int


class ArmExpiry(NamedTuple):
    """Set the service's ``heartbeat_expired`` deadline."""

    sid: str
    when: datetime


class DisarmExpiry(NamedTuple):
    sid: str


class PollStats(NamedTuple):
    """Ask a volume that has just come up for its stats (``backend_state``) at ``when``."""

    sid: str
    when: datetime


Effect = ArmJob | CancelJob | Launch | ArmExpiry | DisarmExpiry | PollStats
Effects = list[Effect]
