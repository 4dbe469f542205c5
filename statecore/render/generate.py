"""``statecore generate``: every reviewable artefact, rewritten from the one table (and the HTTP
API's OpenAPI document, from the app, so a changed route shows in review too).

The output depends on nothing but the code (table order, fixed example values,
no timestamps or absolute paths, LF endings), so regenerating into a scratch
directory and diffing against the committed files is a complete drift check.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from statecore.errors import StatecoreError
from statecore.render.catalogue import notifications_page
from statecore.render.formats import Format, formats
from statecore.render.graph import graph_of
from statecore.render.pages import STAMP, options_page, transitions_page
from statecore.table import BINARIES

LIFECYCLE = "docs/lifecycle.md"
OPENAPI = "docs/openapi.json"
SECTION = re.compile(r"(<!-- BEGIN generated: (?P<path>\S+) -->\n).*?(<!-- END generated -->)", re.DOTALL)


def stamped(fmt: Format, text: str) -> str:
    """The stamp goes on the second line, in the format's comment syntax: after ``<?xml ...?>``,
    ``digraph ... {`` or ``stateDiagram-v2``, where every one of these formats allows a comment."""
    first, rest = text.split("\n", 1)
    return f"{first}\n{fmt.comment.format(STAMP)}\n{rest}"


def artefacts(*, svg: bool = True) -> dict[str, str]:
    """Relative path → content of every generated file; SVG needs Graphviz, so it can be left out."""
    graphs = [graph_of(binary) for binary in BINARIES]
    files: dict[str, str] = {}
    for graph in graphs:
        for fmt in formats("diagram"):
            if svg or fmt.name != "svg":
                files[f"diagrams/{graph.name}.{fmt.suffix}"] = stamped(fmt, fmt.render(graph))
        files[f"docs/transitions-{graph.name}.md"] = transitions_page(graph)
    files["docs/options.md"] = options_page()
    files["docs/notifications.md"] = notifications_page(graphs)
    document = openapi_text()
    if document is not None:
        files[OPENAPI] = document
    return files


def openapi_text() -> str | None:
    """The HTTP API's OpenAPI document as committed (JSON allows no stamp comment); None without
    the api extra, which ``statecore.api`` needs."""
    try:
        from statecore.api.app import openapi_document
    except ImportError:
        return None
    return json.dumps(openapi_document(), indent=2) + "\n"


def fill_sections(text: str, files: dict[str, str]) -> str:
    """Replace each ``BEGIN generated: PATH`` … ``END generated`` block with PATH's Mermaid text."""

    def body(match: re.Match[str]) -> str:
        path = match["path"]
        if path not in files:
            raise StatecoreError(f"{LIFECYCLE}: no generated file {path!r} to embed")
        return f"{match[1]}```mermaid\n{files[path]}```\n{match[3]}"

    return SECTION.sub(body, text)


def generate(out_dir: Path, *, svg: bool = True) -> list[str]:
    """Write every artefact under ``out_dir`` and refresh the generated sections of the lifecycle
    page if ``out_dir`` has one; returns the relative paths written, in a stable order."""
    files = artefacts(svg=svg)
    lifecycle = out_dir / LIFECYCLE
    if lifecycle.exists():
        files[LIFECYCLE] = fill_sections(lifecycle.read_text(encoding="utf-8"), files)
    for relative, text in files.items():
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))
    return list(files)
