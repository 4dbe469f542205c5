"""One registry of output formats, shared by the CLI and the generator so both offer the same set.

A format is a function of the picture alone; ``kind`` says whether it draws
the lifecycle (``statecore diagram``) or tabulates it (``statecore table``),
and ``suffix`` and ``comment`` say how ``statecore generate`` files it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from statecore.errors import StatecoreError
from statecore.render.dot import render_dot, render_svg
from statecore.render.graph import DiagramGraph
from statecore.render.markdown import render_markdown
from statecore.render.mermaid import render_mermaid

Kind = Literal["diagram", "table"]
Renderer = Callable[[DiagramGraph], str]


class UnknownFormat(StatecoreError, ValueError):
    """A format name that is not registered for the asked kind of output."""


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    kind: Kind
    suffix: str
    comment: str
    render: Renderer


FORMATS: dict[str, Format] = {}


def register_format(name: str, kind: Kind, suffix: str, comment: str, render: Renderer) -> None:
    """Add a format; ``comment`` is a template with ``{}`` for a line the format ignores."""
    FORMATS[name] = Format(name=name, kind=kind, suffix=suffix, comment=comment, render=render)


def formats(kind: Kind) -> tuple[Format, ...]:
    return tuple(f for f in FORMATS.values() if f.kind == kind)


def get_format(name: str, kind: Kind) -> Format:
    found = FORMATS.get(name)
    if found is None or found.kind != kind:
        names = ", ".join(f.name for f in formats(kind))
        raise UnknownFormat(f"unknown {kind} format {name!r}: choose {names}")
    return found


register_format("mermaid", "diagram", "mmd", "%% {}", render_mermaid)
register_format("dot", "diagram", "dot", "// {}", render_dot)
register_format("svg", "diagram", "svg", "<!-- {} -->", render_svg)
register_format("markdown", "table", "md", "<!-- {} -->", render_markdown)
