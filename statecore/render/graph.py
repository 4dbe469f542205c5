"""The lifecycle as a plain picture: the one place that reads a ``Rulebook`` for rendering.

Renderers read only these frozen dataclasses, so each can be tested with a
picture written by hand, and every output format agrees on what a state's
colour, an edge's line style or a guard's label is, because it is decided here
once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from statecore.errors import StatecoreError
from statecore.table import BINARIES, Binary, Event, EventSpec, Priority, Rule, Rulebook, StateSpec, rulebook

Tone = Literal["initial", "working", "healthy", "recoverable", "permanent", "down"]
Trigger = Literal["external", "attempt", "timer", "job"]

# init_failed is raised by the attempt, but also by the init_timeout job (InitTimeout); the table's
# ``EventSpec.timed`` only says "always a timer", so the picture adds the events a timer may raise too.
RAISED_BY_TIMEOUT = frozenset({Event.INIT_FAILED})

# A binary-specific guard text longer than this stays in the Markdown table, out of the diagrams.
HINT_MAX = 48


class UnknownBinary(StatecoreError, ValueError):
    """A binary name that has no rulebook."""


@dataclass(frozen=True, slots=True)
class DiagramState:
    name: str
    public: str
    tone: Tone
    meaning: str
    entry: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DiagramEvent:
    name: str
    trigger: Trigger
    origin: str
    meaning: str


@dataclass(frozen=True, slots=True)
class DiagramEdge:
    source: str
    dest: str
    event: str
    trigger: Trigger
    event_type: str
    priority: Priority
    guard: str | None = None
    guard_hint: str | None = None
    guard_meaning: str | None = None
    effects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DiagramGraph:
    """One binary's lifecycle; states, events and edges keep the table's order."""

    name: Binary
    states: tuple[DiagramState, ...]
    events: tuple[DiagramEvent, ...]
    edges: tuple[DiagramEdge, ...]

    @property
    def initial(self) -> DiagramState:
        return next(s for s in self.states if s.tone == "initial")

    def state(self, name: str) -> DiagramState:
        return next(s for s in self.states if s.name == name)

    def triggers(self) -> tuple[tuple[Trigger, tuple[str, ...]], ...]:
        """Each line style in use with the events drawn in it, for a legend that names them."""
        grouped: dict[Trigger, list[str]] = {}
        for event in self.events:
            grouped.setdefault(event.trigger, []).append(event.name)
        return tuple((trigger, tuple(names)) for trigger, names in grouped.items())


def graph_of(binary: str) -> DiagramGraph:
    """The picture of a binary named by a user; an unknown name is one clear error, not a KeyError."""
    if binary not in BINARIES:
        raise UnknownBinary(f"unknown binary {binary!r}: choose {' or '.join(BINARIES)}")
    return extract(rulebook(binary))


def extract(book: Rulebook) -> DiagramGraph:
    """The picture of ``book``: what every renderer and generated document is built from."""
    events = tuple(_event(spec) for spec in book.events)
    triggers = {event.name: event.trigger for event in events}
    edges = tuple(_edge(book, rule, triggers[rule.event.value]) for rule in book.rules)
    states = tuple(_state(spec, edges) for spec in book.states)
    return DiagramGraph(name=book.binary, states=states, events=events, edges=edges)


def _trigger(spec: EventSpec) -> Trigger:
    if spec.timed or spec.name in RAISED_BY_TIMEOUT:
        return "timer"
    if spec.origin in ("service", "admin"):
        return "external"
    if spec.origin == "attempt":
        return "attempt"
    return "job"


def _event(spec: EventSpec) -> DiagramEvent:
    return DiagramEvent(name=spec.name.value, trigger=_trigger(spec), origin=spec.origin, meaning=spec.meaning)


def _tone(spec: StateSpec, edges: tuple[DiagramEdge, ...]) -> Tone:
    """A failed state the engine leaves by itself is amber; one that waits for an admin is red."""
    if spec.kind != "failed":
        return spec.kind
    leaves = (e for e in edges if e.source == spec.name.value)
    return "recoverable" if any(e.trigger != "external" for e in leaves) else "permanent"


def _state(spec: StateSpec, edges: tuple[DiagramEdge, ...]) -> DiagramState:
    return DiagramState(
        name=spec.name.value,
        public=spec.public,
        tone=_tone(spec, edges),
        meaning=spec.meaning,
        entry=tuple(action.value for action in spec.on_enter),
    )


def _edge(book: Rulebook, rule: Rule, trigger: Trigger) -> DiagramEdge:
    guard = book.guard(rule.guard) if rule.guard is not None else None
    meaning = getattr(guard, book.binary) if guard is not None else None
    # Only a text that tells this binary apart from the others is worth a line in the picture.
    specific = guard is not None and any(getattr(guard, other) != meaning for other in BINARIES)
    return DiagramEdge(
        source=rule.source.value,
        dest=rule.dest.value,
        event=rule.event.value,
        trigger=trigger,
        event_type=rule.event_type(book.binary),
        priority=rule.priority,
        guard=guard.label if guard is not None else None,
        guard_hint=meaning if specific and meaning is not None and len(meaning) <= HINT_MAX else None,
        guard_meaning=meaning,
        effects=tuple(action.value for action in rule.effects),
    )
