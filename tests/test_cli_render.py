"""``statecore diagram``, ``table`` and ``generate``: output from the registry, one-line errors."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statecore.cli import app, main
from statecore.render import dot
from statecore.render.dot import render_dot
from statecore.render.graph import graph_of
from statecore.render.markdown import render_markdown
from statecore.render.mermaid import render_mermaid

runner = CliRunner()


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Through ``main()``, which turns statecore's errors into one line and exit code 2."""
    monkeypatch.setattr(sys, "argv", ["statecore", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    captured = capsys.readouterr()
    return stop.value.code, captured.out + captured.err


def test_diagram_prints_mermaid_by_default():
    result = runner.invoke(app, ["diagram", "volume"])
    assert result.exit_code == 0
    assert result.output == render_mermaid(graph_of("volume"))


def test_diagram_prints_dot():
    result = runner.invoke(app, ["diagram", "backup", "--format", "dot"])
    assert result.output == render_dot(graph_of("backup"))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not on PATH")
def test_diagram_prints_svg():
    result = runner.invoke(app, ["diagram", "volume", "--format", "svg"])
    assert result.exit_code == 0 and result.output.startswith("<?xml")


def test_table_prints_the_markdown_transition_table():
    result = runner.invoke(app, ["table", "backup", "--format", "markdown"])
    assert result.output == render_markdown(graph_of("backup"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("diagram", "tape"), "error: unknown binary 'tape': choose volume or backup"),
        (("diagram", "volume", "--format", "png"), "error: unknown diagram format 'png': choose mermaid, dot, svg"),
        (("table", "volume", "--format", "dot"), "error: unknown table format 'dot': choose markdown"),
    ],
)
def test_a_bad_binary_or_format_is_one_line_and_exit_2(monkeypatch, capsys, args, message):
    code, output = run_main(monkeypatch, capsys, *args)
    assert code == 2
    assert output.splitlines() == [message]


def test_svg_without_graphviz_is_one_line_naming_the_package(monkeypatch, capsys):
    monkeypatch.setattr(dot.shutil, "which", lambda name: None)
    code, output = run_main(monkeypatch, capsys, "diagram", "volume", "--format", "svg")
    assert code == 2
    assert output.splitlines() == ["error: 'dot' not found: install Graphviz (Debian: apt-get install graphviz)"]


def test_generate_writes_every_artefact_under_the_out_dir(tmp_path: Path):
    result = runner.invoke(app, ["generate", "--out-dir", str(tmp_path), "--no-svg"])
    assert result.exit_code == 0, result.output
    written = [line.removeprefix("wrote ") for line in result.output.splitlines()]
    assert "diagrams/volume.mmd" in written and "docs/options.md" in written
    assert all((tmp_path / relative).is_file() for relative in written)
    assert not (tmp_path / "diagrams/volume.svg").exists()
