"""Notifications on the operator's message bus, through oslo.messaging (``pip install 'statecore[messaging]'``).

``MessagingSink`` is a sink like the others (notify.py): the engine's outbox holds each
envelope until ``emit`` returns, so while the broker is down transitions go on, and
notifications wait and then go out in order. oslo.messaging's public ``Notifier`` would break
that promise in two ways, so the sink sends each envelope through the transport itself, as the
``Notifier``'s own ``messaging``/``messagingv2`` driver does (one message per topic, on
``<topic>.<priority>``):

- the ``Notifier`` gives every message a fresh ``message_id``; a re-sent notification must
  keep the one its first try had, so consumers can drop the duplicate;
- its messaging driver logs a failed send and returns as if it had succeeded, so the outbox
  would drop what never reached the broker. Here the failure raises, and the outbox keeps it.

That takes ``Transport._send_notification``, the one private call the driver makes: no public
API sends a message with a given ``message_id``. pyproject.toml bounds oslo.messaging below the
next major version, and tests/test_bus.py checks the call's signature.

A send is tried once (oslo's ``retry=0``) and is bounded (``timeout``): a broker that is frozen,
blackholed or blocks publishers on a memory alarm fails the send within seconds, and the
notifier's per-sink backoff tries again later, holding no other sink meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

from statecore.errors import MissingExtra
from statecore.table import Priority

DRIVERS = {"messagingv2": 2.0, "messaging": 1.0}
"""oslo.messaging's notification drivers that publish to the bus, with their message format:
2.0 (with oslo's envelope, what Cinder and Ceilometer use) and the older 1.0."""

GROUPS = {"rabbit": "oslo_messaging_rabbit", "kombu": "oslo_messaging_rabbit", "kafka": "oslo_messaging_kafka"}
"""A transport URL's scheme, and the settings group of the driver it loads (``kombu://`` is rabbit's)."""

TIMEOUT = 5
"""Seconds, by default, before a send to a broker that does not answer counts as failed."""


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
        timeout: int = TIMEOUT,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """``retry``: oslo's reconnection attempts within one send; the outbox retries after that.
        ``timeout``: seconds a send may wait on a broker that does not answer (rabbit's
        ``heartbeat_timeout_threshold``, the socket timeout of an open connection; kombu gives a new
        connection 5 s). ``options``: the transport's own settings (``[oslo_messaging_rabbit]`` for
        ``rabbit://``), such as ``amqp_durable_queues``, which must agree with the consumers' queues."""
        if driver not in DRIVERS:
            raise ValueError(f"MessagingSink: driver {driver!r} does not publish to a bus; use one of {list(DRIVERS)}")
        if not topics or any(not topic for topic in topics):
            raise ValueError(f"MessagingSink: topics {list(topics)!r} must be a non-empty list of names")
        if retry < 0:
            raise ValueError(f"MessagingSink: retry {retry} must be >= 0: a send that never gives up holds the outbox")
        if timeout < 1:
            raise ValueError(f"MessagingSink: timeout {timeout} must be >= 1 s: a send without one holds its sink")
        oslo_messaging, _ = _oslo()
        conf = _configuration(transport_url, timeout, options or {})
        try:
            self.transport = oslo_messaging.get_notification_transport(conf, url=transport_url)
        except (oslo_messaging.InvalidTransportURL, oslo_messaging.DriverLoadFailure) as error:
            raise ValueError(f"MessagingSink: transport_url {transport_url!r}: {error}") from None
        self.version = DRIVERS[driver]
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


def _configuration(transport_url: str, timeout: int, options: Mapping[str, Any]) -> Any:
    """oslo's settings, complete before the transport is built (its driver reads them then), and from
    nothing but these arguments: no configuration file or directory of the machine's is read."""
    from oslo_messaging import opts

    _, cfg = _oslo()
    conf = cfg.ConfigOpts()
    conf([], project="statecore", default_config_files=[], default_config_dirs=[], validate_default_values=True)
    for name, group_options in opts.list_opts():
        conf.register_opts(group_options, group=name)
    scheme = transport_url.split(":", 1)[0].split("+", 1)[0]
    group = GROUPS.get(scheme)
    settings = {"heartbeat_timeout_threshold": timeout, **options} if group == "oslo_messaging_rabbit" else options
    if settings and group is None:
        raise ValueError(
            f"MessagingSink: options {sorted(settings)}: transport {scheme!r} has none; use {sorted(GROUPS)}"
        )
    for option, value in settings.items():
        try:
            conf.set_override(option, value, group=group)
        except (cfg.Error, ValueError) as error:
            raise ValueError(f"MessagingSink: options: {option} = {value!r}: {error}") from None
    if group == "oslo_messaging_rabbit" and conf[group].heartbeat_timeout_threshold < 1:
        raise ValueError(
            "MessagingSink: options: heartbeat_timeout_threshold must be >= 1: a send without it never times out"
        )
    return conf
