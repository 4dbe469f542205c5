"""Retention: the transition history is pruned by age, so a store does not grow for ever.

A periodic ``purge`` job deletes history older than ``history_retention`` (each
service's latest row kept: it says how the service got into its state). It runs
off the engine lock: a purge of a large backlog deletes in small transactions
(``SqlStore.PURGE_BATCH``) while transitions go on. A purge that fails is logged
and tried again at the next run; it never touches the lifecycle. The outbox is
not the job's business: a delivered notification's row is deleted when its sink
acknowledges it, and an undelivered one must stay until it is delivered.
"""

from __future__ import annotations

from datetime import timedelta

from loguru import logger

from statecore.clock import Clock
from statecore.store import Store
from statecore.timers import JobKind, Timers, job_id_of

PURGE_PERIOD = 3600.0
"""Seconds between purges (or the retention itself, if shorter): a row lives at most
``history_retention`` plus this long, and an hourly purge of a busy fleet deletes an hour of rows."""


class Retention:
    def __init__(self, store: Store, clock: Clock, timers: Timers, keep: float) -> None:
        """``keep``: ``history_retention`` in seconds; 0 keeps everything (no job is armed)."""
        self.store, self.clock, self.timers, self.keep = store, clock, timers, keep

    def arm(self) -> None:
        """First run at once (an engine restarted after a long stop purges its backlog first), then
        every period."""
        if self.keep > 0:
            period = min(PURGE_PERIOD, self.keep)
            self.timers.every(job_id_of(JobKind.PURGE), period, self.clock.now(), self.run)

    def run(self) -> None:
        before = self.clock.now() - timedelta(seconds=self.keep)
        try:
            deleted = self.store.purge(before)
        except Exception as error:  # the lifecycle goes on; the next run tries again
            logger.warning("history older than {} not purged ({}); trying again at the next purge", before, error)
            return
        if deleted:
            logger.info("purged {} history rows older than {}", deleted, before)
