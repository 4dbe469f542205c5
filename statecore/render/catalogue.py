"""The notification catalogue: every event_type a binary emits, who emits it, and a real envelope.

The example envelopes are built by ``TransitionRecord.envelope()`` itself, with
fixed ids, times and hosts, so the page shows exactly what a sink receives and
cannot drift from the code that sends it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from statecore.errors import MissingDriverLibrary
from statecore.guards import retries_left
from statecore.records import ErrorInfo, TransitionRecord
from statecore.render.graph import DiagramEdge, DiagramGraph
from statecore.render.markdown import code
from statecore.render.pages import HEADER
from statecore.settings import build_settings
from statecore.table import ADMIN_ACTIONS, Event, State

MESSAGE_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOSTS = {"volume": "node1@lvm", "backup": "node1"}
SETTINGS = build_settings({"backup_periodic_initialization": True}, env=False)
ERRORS = {"init.failure": MissingDriverLibrary("No module named 'acme_storage'")}


def notifications_page(graphs: Iterable[DiagramGraph]) -> str:
    parts = [
        f"{HEADER}# Notifications",
        "",
        "One notification per fired transition, in order; a failing sink is retried and never",
        "blocks or undoes the transition. The envelope follows oslo.messaging: `message_id`",
        "(uuid4), `publisher_id` (`<binary>.<host>`), `event_type`, `priority`, `timestamp`",
        "(ISO 8601, UTC, from the engine's clock) and a `payload` describing the transition.",
        "",
        "Order: every sink is offered the notifications in the order they were made. On the message",
        "bus each priority is a queue of its own (`<topic>.info`, `<topic>.warn`, `<topic>.error`), as",
        "with Cinder and oslo.messaging: each queue keeps its order, but a consumer must not infer an",
        "order across priorities (a WARN may be read before the INFO made just before it); compare",
        "`timestamp`s instead. A re-sent notification keeps its `message_id`.",
        "",
        "The examples are built by `TransitionRecord.envelope()` from illustrative fixed values (id,",
        "time, host, attempt 1), default options and `backup_periodic_initialization = true`.",
    ]
    for graph in graphs:
        parts += ["", f"## {graph.name}"]
        for event_type, edges in _by_event_type(graph).items():
            parts += _entry(graph, event_type, edges)
    parts += _admin_actions()
    return "\n".join(parts) + "\n"


def _admin_actions() -> list[str]:
    """Disable and enable are not transitions, but they are audited and notified the same way."""
    lines = ["", "## admin actions (both binaries)", ""]
    lines += ["An admin's disable or enable leaves the lifecycle alone (`from_state` = `to_state`); the",
              "history keeps it and the sinks get it like a transition, with the admin's reason."]  # fmt: skip
    for spec in ADMIN_ACTIONS:
        record = TransitionRecord(
            host=HOSTS["backup"], binary="backup", zone="nova", event=spec.name, from_state=State.UP,
            to_state=State.UP, at=AT, reason="maintenance" if spec.name == "disable" else spec.meaning,
            error=None, attempt=1, retries_left=retries_left("backup", SETTINGS, 1), next_retry_at=None,
            event_type=spec.event_type("backup"), priority=spec.priority,
        )  # fmt: skip
        lines += ["", f"### {code('<binary>.' + spec.notification)}", "", f"Priority: {spec.priority}. {spec.meaning}."]
        lines += ["", "```json", json.dumps(record.envelope(MESSAGE_ID), indent=2), "```"]
    return lines


def _by_event_type(graph: DiagramGraph) -> dict[str, list[DiagramEdge]]:
    grouped: dict[str, list[DiagramEdge]] = {}
    for edge in graph.edges:
        grouped.setdefault(edge.event_type, []).append(edge)
    return grouped


def _entry(graph: DiagramGraph, event_type: str, edges: list[DiagramEdge]) -> list[str]:
    priorities = ", ".join(dict.fromkeys(edge.priority for edge in edges))
    lines = ["", f"### {code(event_type)}", "", f"Priority: {priorities}. Emitted by:", ""]
    for edge in edges:
        guard = f" [{edge.guard}]" if edge.guard else ""
        lines.append(f"- {code(edge.source)} → {code(edge.dest)} on {code(edge.event)}{guard}")
    envelope = _record(graph, edges[0]).envelope(MESSAGE_ID)
    lines += ["", "Example (the first of these):", "", "```json", json.dumps(envelope, indent=2), "```"]
    return lines


def _record(graph: DiagramGraph, edge: DiagramEdge) -> TransitionRecord:
    """The record the engine would make for ``edge`` on its first attempt, at ``AT``."""
    error = ERRORS.get(edge.event_type.split(".", 1)[1])
    info = None if error is None else ErrorInfo.of(error)
    reason = edge.guard or next(e.meaning for e in graph.events if e.name == edge.event)
    arms_retry = "arm_retry" in (*edge.effects, *graph.state(edge.dest).entry)
    wait = 1 if graph.name == "volume" else SETTINGS.periodic_interval
    return TransitionRecord(
        host=HOSTS[graph.name],
        binary=graph.name,
        zone="nova",
        event=Event(edge.event),
        from_state=State(edge.source),
        to_state=State(edge.dest),
        at=AT,
        reason=reason if info is None else f"{reason}: {info}",
        error=info,
        attempt=1,
        retries_left=retries_left(graph.name, SETTINGS, 1),
        next_retry_at=AT + timedelta(seconds=wait) if arms_retry else None,
        event_type=edge.event_type,
        priority=edge.priority,
    )
