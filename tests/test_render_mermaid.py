"""Mermaid from a hand-made picture: compared with a golden file, so any change of look is reviewed."""

from __future__ import annotations

from pathlib import Path

from render_pictures import TINY

from statecore.render.mermaid import render_mermaid

GOLDEN = Path(__file__).parent / "golden"


def test_mermaid_matches_the_golden_file():
    assert render_mermaid(TINY) == (GOLDEN / "tiny.mmd").read_text(encoding="utf-8")


def test_the_diagram_starts_at_the_initial_state():
    assert render_mermaid(TINY).splitlines()[:3] == ["stateDiagram-v2", "    direction TB", "    [*] --> starting"]


def test_an_edge_label_marks_who_raises_it_and_shows_guard_and_hint():
    lines = render_mermaid(TINY).splitlines()
    assert "    starting --> up : ▶ start<br/>[driver ok]<br/>it imports" in lines
    assert "    up --> down : ⏱ heartbeat_expired" in lines


def test_each_state_gets_its_tone_class():
    lines = render_mermaid(TINY).splitlines()
    assert lines[-3:] == ["    class starting initial", "    class up healthy", "    class down down"]
