"""Mermaid ``stateDiagram-v2``: the picture where GitHub and most Markdown viewers draw it, no Graphviz needed.

Mermaid state diagrams cannot style single edges, so who raises an event is
shown by a mark in front of its label instead of a line style.
"""

from __future__ import annotations

from statecore.render.graph import DiagramEdge, DiagramGraph, Trigger
from statecore.render.style import TONES, edge_lines, legend_lines, state_lines

MARKS: dict[Trigger, str] = {"external": "▶", "attempt": "◆", "timer": "⏱", "job": "↻"}


def render_mermaid(graph: DiagramGraph) -> str:
    lines = ["stateDiagram-v2", "    direction TB", f"    [*] --> {graph.initial.name}"]
    for state in graph.states:
        lines += [f"    {state.name} : {text}" for text in state_lines(state)]
    lines += [f"    {_edge(edge)}" for edge in graph.edges]
    lines += ["    note left of " + graph.initial.name, "        Legend"]
    lines += [f"        {text}" for text in legend_lines(graph.triggers(), MARKS)]
    lines.append("    end note")
    for tone in dict.fromkeys(state.tone for state in graph.states):
        colours = TONES[tone]
        lines.append(f"    classDef {tone} fill:{colours.fill},stroke:{colours.stroke},color:{colours.font}")
    for state in graph.states:
        lines.append(f"    class {state.name} {state.tone}")
    return "\n".join(lines) + "\n"


def _edge(edge: DiagramEdge) -> str:
    label = "<br/>".join(edge_lines(edge))
    return f"{edge.source} --> {edge.dest} : {MARKS[edge.trigger]} {label}"
