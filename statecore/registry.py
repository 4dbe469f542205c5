"""Which services there are: by id, by host, and in the report and capabilities groups.

Services that share a report interval share one ``report`` job; volumes (or
backups) that share a capabilities interval share one ``caps`` job. A group is
named by a ``GroupKey``, a value, so what a job's id says is never parsed back.
``find`` is the one way a host (and, if it has both, a binary) names a service,
for the engine, the CLI and the HTTP API alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol, TypeVar

from statecore.errors import StatecoreError, UnknownService
from statecore.service import Service
from statecore.table import BINARIES, Binary
from statecore.timers import JobKind, job_id_of


class GroupKey(NamedTuple):
    kind: JobKind
    """``REPORT`` (heartbeats) or ``CAPS`` (``is_working()`` and volume stats)."""
    binary: Binary | None
    """Capabilities groups are per binary; report groups take both."""
    seconds: float

    @property
    def job_id(self) -> str:
        parts = (f"{self.seconds:g}",) if self.binary is None else (self.binary, f"{self.seconds:g}")
        return job_id_of(self.kind, *parts)

    @property
    def probe_limit(self) -> float:
        """How long a round waits for drivers: half its period, at most 5 s."""
        return min(self.seconds / 2, 5.0)


def groups_of(service: Service) -> tuple[GroupKey, GroupKey]:
    settings = service.settings
    caps = settings.backend_stats_polling_interval if service.binary == "volume" else settings.periodic_interval
    return GroupKey(JobKind.REPORT, None, settings.report_interval), GroupKey(JobKind.CAPS, service.binary, caps)


class Named(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def binary(self) -> Binary: ...


N = TypeVar("N", bound=Named)


def find(candidates: Iterable[N], host: str, binary: Binary | None, where: str = "is registered") -> N:
    """The one service of ``host`` (and ``binary``) among ``candidates``, or ``UnknownService``
    naming what is missing: the host, or the binary of a host that has both."""
    matches = [c for c in candidates if c.host == host and (binary is None or c.binary == binary)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownService(f"no {binary or 'volume or backup'} service {host!r} {where}")
    raise UnknownService(f"host {host!r} has both a volume and a backup service: say which binary")


def check_name(host: str, binary: str) -> None:
    """A volume is ``host@backend``, a backup a plain host: Cinder's names, which the CLI and API take."""
    if binary not in BINARIES:
        raise StatecoreError(f"service {host!r}: binary {binary!r} is not one of {', '.join(BINARIES)}")
    if not host or (binary == "volume") != ("@" in host):
        form = "'host@backend'" if binary == "volume" else "a plain host name (no '@')"
        raise StatecoreError(f"service {host!r}: a {binary} service is named {form}")


class Registry:
    def __init__(self) -> None:
        self.services: dict[str, Service] = {}
        self.groups: dict[GroupKey, dict[str, Service]] = {}
        self.reserved: set[str] = set()
        """Services being registered (their store claim in progress, without the engine lock)."""
        self.adopted: set[str] = set()
        """Services registered with a stored state, not yet recovered (their timers re-derived)."""
        self._hosts: dict[str, tuple[Service, ...]] = {}

    def add(self, service: Service) -> list[GroupKey]:
        """Register ``service``; returns the groups it is the first member of ever (their jobs are new)."""
        self.services[service.id] = service
        self._hosts[service.host] = (*self._hosts.get(service.host, ()), service)
        new = []
        for key in groups_of(service):
            if key not in self.groups:  # a group emptied by ``remove`` keeps its job, and its rhythm
                self.groups[key] = {}
                new.append(key)
            self.groups[key][service.id] = service
        return new

    def remove(self, sid: str) -> Service | None:
        """Unregister a service this engine no longer drives (its lease is another's now)."""
        service = self.services.pop(sid, None)
        if service is not None:
            self.adopted.discard(sid)
            self._hosts[service.host] = tuple(s for s in self._hosts[service.host] if s.id != sid)
            for key in groups_of(service):
                self.groups.get(key, {}).pop(sid, None)
        return service

    def check_new(self, services: Sequence[Service], *, waiting: Mapping[str, Service]) -> None:
        """Refuse, by name, a service already registered (or waiting for its lease) or named
        twice, before any is added."""
        seen: set[str] = set()
        taken = (self.services, waiting, self.reserved, seen)
        for service in services:
            if any(service.id in ids for ids in taken):
                raise StatecoreError(f"service {service.host!r} ({service.binary}) is already registered")
            seen.add(service.id)
        self.reserved |= seen

    def find(self, host: str, binary: Binary | None) -> Service:
        """A plain dict read, atomic, so callers need no lock. The engine's hot path: a host with
        one service answers without building a list."""
        matches = self._hosts.get(host, ())
        if len(matches) == 1 and (binary is None or matches[0].binary == binary):
            return matches[0]
        return find(matches, host, binary)

    def select(self, *, binary: Binary | None = None, host: str | None = None) -> Sequence[Service]:
        services = self.services.values() if host is None else self._hosts.get(host, ())
        return [s for s in services if binary is None or s.binary == binary]
