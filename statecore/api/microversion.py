"""Microversions as Cinder negotiates them: header ``OpenStack-API-Version: volume X.Y``.

No header (or a header that names only other services) means the minimum, as Cinder and the
OpenStack microversion guideline say; ``latest`` means the maximum. A version that does not parse
is a client error (400), one outside the range is not acceptable (406): the client asked for a
contract this server does not offer, and must not silently get another.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from statecore.api.faults import ApiFault

HEADER = "OpenStack-API-Version"
SERVICE = "volume"
_FORMAT = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")  # Cinder's APIVersionRequest pattern: no leading zeros


class Version(NamedTuple):
    """A microversion; a tuple, so ``Version(3, 49) <= v`` compares major then minor."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def header(self) -> str:
        """The value to echo in ``OpenStack-API-Version``."""
        return f"{SERVICE} {self}"


MIN_VERSION = Version(3, 0)
CLUSTER = Version(3, 7)
"""Cinder 3.7 (CLUSTER_SUPPORT) adds ``cluster`` to every service row; statecore has no clusters: null."""
LOG_LEVEL = Version(3, 32)
"""Cinder 3.32 (LOG_LEVEL) adds the ``get-log`` and ``set-log`` actions; below it they are 404."""
BACKEND_STATE = Version(3, 49)
"""Cinder 3.49 (BACKEND_STATE_REPORT) adds ``backend_state`` to cinder-volume rows only."""
MAX_VERSION = BACKEND_STATE
"""The newest version whose service-list contract statecore serves in full (BEHAVIOR.md section 8)."""
UPDATED = "2017-09-19T20:18:14Z"
"""The ``updated`` of Cinder's version document while its maximum was 3.49."""


def negotiate(header: str | None) -> Version:
    """The version a request asked for; raises ApiFault(400) if malformed, ApiFault(406) if out of range."""
    requested = _volume_entry(header)
    if requested is None:
        return MIN_VERSION
    if requested.lower() == "latest":
        return MAX_VERSION
    match = _FORMAT.match(requested)
    if match is None:
        raise ApiFault(
            400, f"API Version String {requested} is of invalid format. Must be of format MajorNum.MinorNum."
        )
    version = Version(int(match[1]), int(match[2]))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ApiFault(
            406,
            f"Version {version} is not supported by the API. Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}.",
        )
    return version


def _volume_entry(header: str | None) -> str | None:
    """The version text of the ``volume`` entry of a (comma-separated) header, or None if it has none.

    Entries for other services (``compute 2.1``) are someone else's business. Cinder matches
    ``volume`` as a substring; statecore wants the service type as the entry's first word.
    """
    if header is None:
        return None
    for entry in header.split(","):
        words = entry.split()
        if words and words[0].lower() == SERVICE:
            if len(words) != 2:
                raise ApiFault(400, f"OpenStack-API-Version entry {entry.strip()!r} must be 'volume X.Y'.")
            return words[1]
    return None
