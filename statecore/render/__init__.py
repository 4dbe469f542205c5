"""Reviewable artefacts from the one table: rulebook → picture (``graph``) → Mermaid, DOT, SVG, Markdown."""

from statecore.render.formats import FORMATS, Format, UnknownFormat, get_format, register_format
from statecore.render.graph import (
    DiagramEdge,
    DiagramEvent,
    DiagramGraph,
    DiagramState,
    UnknownBinary,
    extract,
    graph_of,
)

__all__ = [
    "FORMATS",
    "DiagramEdge",
    "DiagramEvent",
    "DiagramGraph",
    "DiagramState",
    "Format",
    "UnknownBinary",
    "UnknownFormat",
    "extract",
    "get_format",
    "graph_of",
    "register_format",
]
