"""The exceptions statecore raises and the ones drivers may raise.

Drivers raise the three ``UnrecoverableError`` subclasses to say "retrying will
not help"; the default classifier also treats a bare ``ImportError`` that way,
because a missing driver library does not appear by itself.
"""

from __future__ import annotations


class StatecoreError(Exception):
    """Base class, so an embedding service can catch everything of ours at once."""


class UnrecoverableError(StatecoreError):
    """An init error that no retry can fix; the service goes to failed_permanent."""


class ConfigError(UnrecoverableError):
    """The driver's configuration is invalid."""


class DriverNotSupported(UnrecoverableError):
    """The driver is marked unsupported and ``enable_unsupported_driver`` is false."""


class MissingDriverLibrary(UnrecoverableError):
    """The driver, or a library it needs, cannot be imported."""


class InitTimeout(StatecoreError):
    """An attempt outlived ``init_timeout``; recoverable, and its late outcome is ignored."""


class PreviousAttemptStuck(StatecoreError):
    """The driver's previous call has not returned yet; a new attempt would only add a thread
    stuck beside it, so it fails at once (recoverably) and the retry schedule goes on."""


class SettingsError(StatecoreError, ValueError):
    """An option was refused at load time; the message names option, value and rule."""


class UnknownService(StatecoreError, LookupError):
    """No service matches the host (and binary) that was asked for."""


class ServiceAlive(StatecoreError):
    """A service whose heartbeat is fresh cannot be removed from the store; nothing was changed."""


class InvalidTransition(StatecoreError):
    """An event is not allowed in the service's current state; nothing was changed."""

    def __init__(self, service: str, binary: str, state: str, event: str, detail: str) -> None:
        self.service = service
        self.binary = binary
        self.state = state
        self.event = event
        super().__init__(f"service {service!r} ({binary}) is {state!r}: event {event!r} is not allowed ({detail})")


class ServiceUnavailable(StatecoreError):
    """An operation needs a service that is not up (BEHAVIOR.md section 9); fail fast, retry later.

    The message is the user-facing one (Cinder's user message ``018`` for a backup service); which
    host it was is in ``host`` and ``binary``, for admins and logs, because host names are admin-only.
    """

    def __init__(self, message: str, *, host: str, binary: str, message_id: str | None = None) -> None:
        super().__init__(message)
        self.host = host
        self.binary = binary
        self.message_id = message_id


class NoServiceAvailable(StatecoreError):
    """No service can take new work: none is up, enabled and in the asked zone (Cinder's ``024``)."""

    message_id = "024"


class InvalidBackup(StatecoreError):
    """A backup is not in a state that allows the operation (Cinder's ``InvalidBackup``)."""


class MissingExtra(StatecoreError):
    """An optional part of statecore was configured, but its libraries are not installed; the
    message names the extra that brings them."""

    def __init__(self, what: str, extra: str, missing: str | None) -> None:
        super().__init__(f"{what} need the {extra} extra ({missing} is missing): pip install 'statecore[{extra}]'")
