"""Which engine drives a service: leases on the store, fencing tokens in every write.

Several engines may be configured with the same services (a standby host, or a
mistake). Each service is driven by the one engine holding its lease in the
store, which expires on the database's clock unless renewed (every third of
``lease_time``). Each claim raises the service's ``generation``, and every write
of the service carries the generation it was claimed under, so an engine that
lost its lease (stopped, cut off from the database, slower than a takeover)
writes nothing more for it: its commit is refused with ``Fenced``.

What an engine does about a service it cannot have:

- at registration, with ``standby`` off (the default), it refuses to start,
  naming the engine that holds it; with ``standby`` on, it waits for it;
- at run time, a service whose lease is lost (renewal found another generation,
  a commit was fenced, or the store could not renew it for a whole ``lease_time``)
  is dropped at once: its timers cancelled, its late attempt outcomes ignored,
  said in the log and in a ``<binary>.service.fenced`` notification. It then
  waits like a standby's, and comes back if its lease becomes free again.

A private store (``MemoryStore()``) grants every claim, and nothing is renewed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from loguru import logger

from statecore.errors import StatecoreError
from statecore.jobs import Jobs
from statecore.notify import Notifier
from statecore.records import iso
from statecore.registry import Registry
from statecore.service import Service
from statecore.settings import Settings
from statecore.store import Claim, Holder, ServiceState, Store, StoreUnavailable
from statecore.table import State
from statecore.timers import JobKind, job_id_of

_CLAIMED = "another engine claimed this service; this engine stopped driving it"
_UNRENEWED = "this engine could not renew its lease in time; it stopped driving the service"


class ServiceHeld(StatecoreError):
    """Another engine drives a service this one was configured with, and ``standby`` is off."""


class Leases:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        jobs: Jobs,
        notifier: Notifier,
        owner: str,
        settings: Settings,
        message_id: Callable[[], str],
        on_taken: Callable[[list[Service]], None],
    ) -> None:
        """``on_taken``: the engine registers and brings up services taken over."""
        self.store, self.registry, self.jobs, self.notifier = store, registry, jobs, notifier
        self.owner, self.settings, self.message_id, self.on_taken = owner, settings, message_id, on_taken
        self.clock, self.lock, self.timers = jobs.clock, jobs.lock, jobs.timers
        self.waiting: dict[str, Service] = {}
        """Services another engine drives: a standby's, and those this engine lost."""
        self._renewed: datetime | None = None
        """When the last renewal that reached the store was sent (this engine's clock)."""
        self._dropped: dict[str, int] = {}
        """Services dropped, with the generation they had: unchanged in the store, they come back."""

    # -- claiming ---------------------------------------------------------------------------

    def take(self, services: Sequence[Service], *, refuse: bool, own: bool = True) -> list[Service]:
        """Claim ``services`` (new ones get a row first); those now ours have their stored state
        adopted and their generation set. The rest wait, or with ``refuse`` the claim is let go
        and ``ServiceHeld`` names their holders. ``own``: a lease under this engine's own name is
        taken too (a restart); a look for free leases does not, or two engines given one name
        would take a service from each other at every look."""
        by_id = {service.id: service for service in services}
        now, store, lease = self.clock.now(), self.store, self.settings.lease_time
        claim = store.claim(list(by_id), self.owner, lease, now, own=own)
        if claim.held and refuse:
            store.release(claim.granted)
            raise ServiceHeld(_held_message(claim.held))
        missing = [by_id[sid] for sid in by_id if sid not in claim.granted and sid not in claim.held]
        if missing:  # never stored: a row first, then the same claim (another engine may win it)
            store.insert_new([service.stored(self.owner) for service in missing])
            late = store.claim([service.id for service in missing], self.owner, lease, now, own=own)
            claim = Claim({**claim.granted, **late.granted}, {**claim.held, **late.held})
        stored = store.load_many(list(claim.granted))
        if claim.granted:
            self._renewed = now  # the claim started these leases: renewal counts from here
        with self.lock:  # only the adoption: the store was asked without it
            return self._adopt(by_id, claim, stored)

    def _adopt(self, by_id: dict[str, Service], claim: Claim, stored: dict[str, ServiceState]) -> list[Service]:
        for sid, generation in claim.granted.items():
            service = by_id[sid]
            service.adopt(stored[sid])
            service.generation = generation
            self.waiting.pop(sid, None)
            if service.state is not _STARTING:
                self.registry.adopted.add(sid)
        for sid, holder in claim.held.items():
            if sid not in self.waiting:  # said once, not at every look
                logger.warning("standby for {}: driven by {} (lease until {})", sid, holder.owner, iso(holder.until))
            self.waiting[sid] = by_id[sid]
        return [by_id[sid] for sid in claim.granted]

    # -- the lease job ----------------------------------------------------------------------

    def arm(self) -> None:
        """Renewal, and a standby's watch, every third of ``lease_time`` (shared stores only)."""
        if self.store.shared:
            period = self.settings.lease_time / 3
            first = self.clock.now() + timedelta(seconds=period)
            self.timers.every(job_id_of(JobKind.LEASE), period, first, self.on_lease)

    def on_lease(self) -> None:
        """Renew what is ours, drop what is not any more, and take over what has become free."""
        try:
            self.renew()
            if self._dropped:
                self._take_back()
            if self.waiting:
                self._take_free()
        finally:
            self.jobs.settle()

    def _take_back(self) -> None:
        """Services dropped for want of a renewal that nobody claimed meanwhile carry on as they
        were (no ``restart``): the store answers again, and their drivers never left this engine."""
        now = self.clock.now()
        try:
            taken = self.store.reclaim(self._dropped, self.owner, self.settings.lease_time, now)
        except StoreUnavailable:
            return
        self._dropped = {}
        if taken:
            self._renewed = now
            with self.lock:
                resumed = [self.waiting.pop(sid) for sid in taken]
                for service in resumed:
                    service.generation = taken[service.id]
            logger.warning("store answers again: this engine drives its {} services on", len(resumed))
            self.jobs.resume(resumed)

    def _take_free(self) -> None:
        try:
            taken = self.take(list(self.waiting.values()), refuse=False, own=False)
        except StoreUnavailable:
            return  # the renewal has said the store is out; the next look tries again
        for service in taken:
            logger.warning("{}: taken over (generation {}); its lease was free", service.id, service.generation)
        if taken:  # what their previous engine left undelivered is theirs to send now
            ids = frozenset(service.id for service in taken)
            self.notifier.preload({sink: self.store.pending(sink, ids) for sink in self.notifier.names})
            self.on_taken(taken)

    def renew(self) -> None:
        with self.lock:
            owned = {sid: service.generation for sid, service in self.registry.services.items()}
        if not owned:
            return
        sent = self.clock.now()
        try:
            lost = self.store.renew(owned, self.settings.lease_time, sent)
        except Exception as error:
            self._unrenewed(owned, sent, error)
            return
        self._renewed = sent
        self.jobs.ledger.fenced.update(lost)

    def _unrenewed(self, owned: dict[str, int], sent: datetime, error: Exception) -> None:
        """Two looks without a renewal: by the next one the leases may have run out and another
        engine claimed them, so this engine stops driving every service now (and takes them back
        when the store answers, if they are still free)."""
        silent = sent - (self._renewed or sent)
        if silent < timedelta(seconds=self.settings.lease_time * 2 / 3):
            logger.warning("leases not renewed ({}); trying again at the next look", error)
            return
        logger.error("leases not renewed for {:g} s ({}): this engine stops driving its {} services",
                     silent.total_seconds(), error, len(owned))  # fmt: skip
        self.drop(list(owned), why=_UNRENEWED)

    # -- letting go ---------------------------------------------------------------------------

    def drop(self, sids: Sequence[str], why: str = _CLAIMED) -> None:
        """Stop driving services this engine no longer holds: no timer, no write, no late outcome."""
        dropped = []
        with self.lock:
            for sid in sids:
                service = self.registry.remove(sid)
                if service is not None:
                    self.jobs.forget(service)
                    self.waiting[sid] = service
                    if why == _UNRENEWED:  # a claimed one moved on to a new generation: no taking it back
                        self._dropped[sid] = service.generation
                    dropped.append(service)
        for service in dropped:
            if why == _CLAIMED:  # one line each; a whole fleet cut off is said once, by the caller
                logger.error("{}: fenced: another engine drives it now; this engine stopped driving it", service.id)
            self._announce(service, why)

    def _announce(self, service: Service, why: str) -> None:
        envelope = {
            "message_id": self.message_id(), "publisher_id": f"{service.binary}.{service.host}",
            "event_type": f"{service.binary}.service.fenced", "priority": "WARN", "timestamp": iso(self.clock.now()),
            "payload": {"host": service.host, "binary": service.binary, "zone": service.zone, "owner": self.owner,
                        "generation": service.generation,
                        "reason": why},
        }  # fmt: skip
        try:
            self.store.enqueue(envelope, self.notifier.names)
        except Exception as error:  # the sinks still get it from memory; only a crash now would lose it
            logger.warning("fencing notice for {} not stored ({})", service.id, error)
        self.notifier.publish(envelope)

    def release(self, within: float = 1.0) -> None:
        """A clean stop: a standby takes over at its next look rather than a lease later. Bounded:
        a job stuck in a hung store may hold the engine lock, so the services are read without it
        (a glance), and a store that does not answer within ``within`` s is left to expire them."""
        owned = {sid: service.generation for sid, service in list(self.registry.services.items())}
        if self.store.shared and owned:
            worker = threading.Thread(target=self._release, args=(owned,), name="statecore-release", daemon=True)
            worker.start()
            worker.join(within)

    def _release(self, owned: dict[str, int]) -> None:
        try:
            self.store.release(owned)
        except Exception as error:
            logger.warning("leases not released ({}); they expire on their own", error)


def _held_message(held: dict[str, Holder]) -> str:
    named = ", ".join(f"{sid} (by {h.owner}, lease until {iso(h.until)})" for sid, h in sorted(held.items()))
    return f"another engine drives {named}; stop it first, or set standby = true to take over when its lease expires"


_STARTING = State.STARTING
