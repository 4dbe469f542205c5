"""The committed diagrams and docs are what the table generates today, and a changed table shows in review."""

from __future__ import annotations

import difflib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statecore.cli import app
from statecore.errors import StatecoreError
from statecore.render.dot import render_dot
from statecore.render.generate import LIFECYCLE, artefacts, fill_sections
from statecore.render.graph import DiagramGraph, extract
from statecore.render.markdown import render_markdown
from statecore.render.mermaid import render_mermaid
from statecore.render.pages import STAMP
from statecore.table import BINARIES, Event, Rule, State, rulebook

ROOT = Path(__file__).resolve().parent.parent
HAS_DOT = shutil.which("dot") is not None
PATHS = [*artefacts(svg=False), *(f"diagrams/{binary}.svg" for binary in BINARIES), LIFECYCLE]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``statecore generate`` into a scratch tree that holds only the hand-written lifecycle page."""
    out = tmp_path_factory.mktemp("generated")
    (out / "docs").mkdir()
    shutil.copy(ROOT / LIFECYCLE, out / LIFECYCLE)
    result = CliRunner().invoke(app, ["generate", "--out-dir", str(out), *([] if HAS_DOT else ["--no-svg"])])
    assert result.exit_code == 0, result.output
    return out


def diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"committed/{name}", f"generated/{name}", lineterm=""
    )
    return "\n".join(lines)


@pytest.mark.parametrize("relative", PATHS)
def test_the_committed_file_is_what_the_table_generates(relative: str, regenerated: Path):
    if relative.endswith(".svg") and not HAS_DOT:
        pytest.skip("Graphviz 'dot' is not on PATH, so SVG cannot be regenerated (apt-get install graphviz)")
    committed = ROOT / relative
    assert committed.exists(), f"{relative} is missing: run `statecore generate`"
    old = committed.read_text(encoding="utf-8")
    new = (regenerated / relative).read_text(encoding="utf-8")
    if old != new:
        pytest.fail(f"{relative} is out of date: run `statecore generate`\n{diff(old, new, relative)}")


def test_no_stale_generated_file_is_left_behind():
    stamped = {
        path.relative_to(ROOT).as_posix()
        for folder in ("diagrams", "docs")
        for path in (ROOT / folder).glob("*")
        if STAMP in "\n".join(path.read_text(encoding="utf-8").splitlines()[:2])
    }
    assert stamped <= set(PATHS)


def test_the_lifecycle_page_embeds_both_mermaid_diagrams(regenerated: Path):
    page = (regenerated / LIFECYCLE).read_text(encoding="utf-8")
    for binary in BINARIES:
        mermaid = (regenerated / f"diagrams/{binary}.mmd").read_text(encoding="utf-8")
        assert f"<!-- BEGIN generated: diagrams/{binary}.mmd -->\n```mermaid\n{mermaid}```\n" in page


def test_an_embedded_section_naming_no_generated_file_is_an_error():
    with pytest.raises(StatecoreError, match=r"no generated file 'diagrams/tape\.mmd'"):
        fill_sections("<!-- BEGIN generated: diagrams/tape.mmd -->\n<!-- END generated -->\n", {})


def test_generated_text_is_deterministic_lf_and_ends_with_a_newline(regenerated: Path):
    first, second = artefacts(svg=HAS_DOT), artefacts(svg=HAS_DOT)
    assert first == second
    for relative, text in first.items():
        assert text.endswith("\n") and "\r" not in text, relative
        assert str(regenerated) not in text and str(ROOT) not in text, relative


def changes(old: str, new: str) -> tuple[list[str], list[str]]:
    """(added, removed) lines between two renderings."""
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0))[2:]
    added = [line[1:] for line in lines if line.startswith("+")]
    removed = [line[1:] for line in lines if line.startswith("-")]
    return added, removed


EXTRA = Rule(source=State.UP, event=Event.RESET, guard=None, dest=State.INITIALIZING,
             notification="init.reset", priority="INFO")  # fmt: skip


@pytest.mark.parametrize(
    ("render", "expected"),
    [
        (render_mermaid, "    up --> initializing : ▶ reset"),
        (render_dot, '    up -> initializing [label="reset", style=bold, color="#1565c0", fontcolor="#1565c0"]'),
        (
            render_markdown,
            "| `up` | `reset` |  | `initializing` | `volume.init.reset` | INFO | entry `begin_attempt` |",
        ),
    ],
)
def test_a_row_added_to_the_table_is_exactly_one_added_line(render: Callable[[DiagramGraph], str], expected: str):
    book = rulebook("volume")
    changed = book.model_copy(update={"rules": (*book.rules, EXTRA)})
    assert changes(render(extract(book)), render(extract(changed))) == ([expected], [])
