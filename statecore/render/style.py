"""How the picture looks, shared by every diagram format so Mermaid and Graphviz tell one story.

Colours say where a service stands (blue on its way, green up, amber failing
but retrying, red stuck until an admin acts, grey down); line styles say who
raises an event (bold: the embedding service or an admin, solid: an attempt's
outcome, dashed: a timer, dotted: the report or capabilities job).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from statecore.render.graph import DiagramEdge, DiagramState, Tone, Trigger


@dataclass(frozen=True, slots=True)
class Colours:
    fill: str
    stroke: str
    font: str = "#000000"


TONES: dict[Tone, Colours] = {
    "initial": Colours("#e3f2fd", "#1565c0"),
    "working": Colours("#bbdefb", "#1565c0"),
    "healthy": Colours("#c8e6c9", "#2e7d32"),
    "recoverable": Colours("#ffe0b2", "#e65100"),
    "permanent": Colours("#ffcdd2", "#c62828"),
    "down": Colours("#90a4ae", "#37474f", "#ffffff"),
}

TONE_WORDS: dict[Tone, str] = {
    "initial": "starting",
    "working": "initializing",
    "healthy": "up, healthy",
    "recoverable": "failed, retrying",
    "permanent": "failed, waits for an admin",
    "down": "down",
}

LINES: dict[Trigger, str] = {
    "external": "bold",
    "attempt": "solid",
    "timer": "dashed",
    "job": "dotted",
}

TRIGGER_WORDS: dict[Trigger, str] = {
    "external": "service or admin",
    "attempt": "attempt outcome",
    "timer": "timer job",
    "job": "report / capabilities job",
}


def edge_lines(edge: DiagramEdge) -> tuple[str, ...]:
    """An edge's label, one entry a line: the event, its guard, and the binary's own reading of it."""
    lines = [edge.event]
    if edge.guard is not None:
        lines.append(f"[{edge.guard}]")
    if edge.guard_hint is not None:
        lines.append(edge.guard_hint)
    return tuple(lines)


def state_lines(state: DiagramState) -> tuple[str, ...]:
    """What a state box says under its name: its public state and its entry actions."""
    return (f"public: {state.public}", *(f"entry / {action}" for action in state.entry))


def legend_lines(
    triggers: tuple[tuple[Trigger, tuple[str, ...]], ...], marks: Mapping[Trigger, str]
) -> tuple[str, ...]:
    """One line per trigger in use: how the format marks it, who raises it, and which events."""
    return tuple(f"{marks[t]} {TRIGGER_WORDS[t]}: {', '.join(events)}" for t, events in triggers)
