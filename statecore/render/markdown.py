"""Markdown tables: the full text of every row, where the diagrams only have room for labels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from statecore.render.graph import DiagramEdge, DiagramGraph

TRANSITION_COLUMNS = ("from", "event", "guard", "to", "event_type", "priority", "effects / entry actions")


def md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub table; pipes in cells are escaped so a guard's text cannot split a row."""
    lines = [_row(headers), _row(["---"] * len(headers))]
    lines += [_row(row) for row in rows]
    return "\n".join(lines) + "\n"


def code(text: str) -> str:
    return f"`{text}`"


def render_markdown(graph: DiagramGraph) -> str:
    """The transition table of one binary, in the table's row order."""
    return md_table(TRANSITION_COLUMNS, (_transition(graph, edge) for edge in graph.edges))


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _guard(edge: DiagramEdge) -> str:
    if edge.guard is None:
        return ""
    return f"**{edge.guard}**: {edge.guard_meaning}" if edge.guard_meaning else f"**{edge.guard}**"


def _transition(graph: DiagramGraph, edge: DiagramEdge) -> tuple[str, ...]:
    actions = [code(action) for action in edge.effects]
    actions += [f"entry {code(action)}" for action in graph.state(edge.dest).entry]
    return (
        code(edge.source),
        code(edge.event),
        _guard(edge),
        code(edge.dest),
        code(edge.event_type),
        edge.priority,
        ", ".join(actions),
    )
