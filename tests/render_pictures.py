"""A small lifecycle picture written by hand, so renderer tests need no rulebook."""

from __future__ import annotations

from statecore.render.graph import DiagramEdge, DiagramEvent, DiagramGraph, DiagramState

TINY = DiagramGraph(
    name="volume",
    states=(
        DiagramState(name="starting", public="down", tone="initial", meaning="created"),
        DiagramState(name="up", public="up", tone="healthy", meaning="working", entry=("mark_live",)),
        DiagramState(name="down", public="down", tone="down", meaning="gone"),
    ),
    events=(
        DiagramEvent(name="start", trigger="external", origin="service", meaning="go"),
        DiagramEvent(name="heartbeat_expired", trigger="timer", origin="timer", meaning="late"),
    ),
    edges=(
        DiagramEdge(
            source="starting",
            dest="up",
            event="start",
            trigger="external",
            event_type="volume.init.start",
            priority="INFO",
            guard="driver ok",
            guard_hint="it imports",
            guard_meaning="it imports | builds",
            effects=("restart_grace",),
        ),
        DiagramEdge("up", "down", "heartbeat_expired", "timer", "volume.service.down", "WARN"),
    ),
)
