"""The Markdown transition table from a hand-made picture."""

from __future__ import annotations

from pathlib import Path

from render_pictures import TINY

from statecore.render.markdown import md_table, render_markdown

GOLDEN = Path(__file__).parent / "golden"


def test_markdown_matches_the_golden_file():
    assert render_markdown(TINY) == (GOLDEN / "tiny.md").read_text(encoding="utf-8")


def test_a_row_has_guard_with_meaning_and_effects_then_entry_actions():
    row = render_markdown(TINY).splitlines()[2]
    assert "| **driver ok**: it imports \\| builds |" in row
    assert row.endswith("| `restart_grace`, entry `mark_live` |")


def test_a_pipe_in_a_cell_cannot_split_the_row():
    assert md_table(("a", "b"), [("x|y", "z")]) == "| a | b |\n| --- | --- |\n| x\\|y | z |\n"
