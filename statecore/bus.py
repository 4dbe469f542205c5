"""Notifications on the operator's message bus, through oslo.messaging (``pip install 'statecore[messaging]'``).

``MessagingSink`` is a sink like the others (notify.py): the engine's outbox holds each
envelope until ``emit`` returns, so while the broker is down transitions go on, and
notifications wait and then go out in order. Two things oslo.messaging's ``Notifier``
does would break that promise, so the sink sends each envelope through the transport
itself, as the ``Notifier``'s own ``messaging``/``messagingv2`` driver does (one message
per topic, on ``<topic>.<priority>``):

- the ``Notifier`` gives every message a fresh ``message_id``; a re-sent notification must
  keep the one its first try had, so consumers can drop the duplicate;
- its messaging driver logs a failed send and returns as if it had succeeded, so the outbox
  would drop what never reached the broker. Here the failure raises, and the outbox keeps it.

A send is tried once (oslo's ``retry=0``): the notifier's own backoff tries again later,
without holding the delivery thread inside oslo's reconnect loop. The ``Notifier`` is still
built, from the configured driver and topics, so a driver name oslo.messaging does not know
is refused before anything starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

from statecore.errors import MissingExtra
from statecore.table import Priority

DRIVERS = ("messagingv2", "messaging")
"""oslo.messaging's notification drivers that publish to the bus: message format 2.0 (with
oslo's envelope, what Cinder and Ceilometer use) and the older 1.0."""


def _oslo() -> tuple[Any, Any]:
    try:
        import oslo_messaging
        from oslo_config import cfg
    except ImportError as error:
        raise MissingExtra("notifications on the message bus", "messaging", error.name) from None
    return oslo_messaging, cfg


class MessagingSink:
    """Publishes each envelope, unchanged, to every topic of an oslo.messaging transport."""

    name = "messaging"

    def __init__(
        self,
        transport_url: str,
        *,
        topics: Sequence[str] = ("notifications",),
        driver: str = "messagingv2",
        retry: int = 0,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """``retry``: oslo's reconnection attempts within one send; the outbox retries after that.
        ``options``: the transport's own settings (``[oslo_messaging_rabbit]`` for ``rabbit://``), such
        as ``amqp_durable_queues``, which must agree with the consumers' declaration of the queues."""
        if driver not in DRIVERS:
            raise ValueError(f"MessagingSink: driver {driver!r} does not publish to a bus; use one of {DRIVERS}")
        if not topics or any(not topic for topic in topics):
            raise ValueError(f"MessagingSink: topics {list(topics)!r} must be a non-empty list of names")
        if retry < 0:
            raise ValueError(f"MessagingSink: retry {retry} must be >= 0: a send that never gives up holds the outbox")
        oslo_messaging, cfg = _oslo()
        conf = cfg.ConfigOpts()
        conf([], project="statecore", validate_default_values=True)
        try:
            self.transport = oslo_messaging.get_notification_transport(conf, url=transport_url)
        except (oslo_messaging.InvalidTransportURL, oslo_messaging.DriverLoadFailure) as error:
            raise ValueError(f"MessagingSink: transport_url {transport_url!r}: {error}") from None
        group = "oslo_messaging_" + transport_url.split(":", 1)[0].split("+", 1)[0]
        for option, value in (options or {}).items():
            try:
                conf.set_override(option, value, group=group)
            except (cfg.Error, ValueError) as error:
                raise ValueError(f"MessagingSink: options: {option} = {value!r}: {error}") from None
        self.notifier = oslo_messaging.Notifier(self.transport, driver=driver, topics=list(topics), retry=retry)
        (extension,) = self.notifier._driver_mgr.extensions
        self.version: float = extension.obj.version
        self.topics, self.retry = tuple(topics), retry
        self._targets = {
            priority: [oslo_messaging.Target(topic=f"{topic}.{priority.lower()}") for topic in self.topics]
            for priority in get_args(Priority)
        }

    def emit(self, envelope: Mapping[str, Any]) -> None:
        """Raises when the broker does not take it; a topic that did is sent it again on the retry
        (a duplicate with the same ``message_id``), as at-least-once delivery allows."""
        message = dict(envelope)
        for target in self._targets[envelope["priority"]]:
            self.transport._send_notification(target, {}, message, version=self.version, retry=self.retry)

    def close(self) -> None:
        """Close the transport's connections (the engine does not own the sink)."""
        self.transport.cleanup()

    def __repr__(self) -> str:
        return f"MessagingSink(topics={list(self.topics)})"
