"""The simulation plot: a picture built from a result, drawn as SVG in the diagrams' colours."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from statecore.render.style import TONES
from statecore.sim import load_scenario, run_scenario
from statecore.sim.plot import (
    LABELLED_TRACKS,
    Mark,
    Picture,
    PlotError,
    Span,
    Track,
    check_plot_path,
    picture_of,
    render_html,
    render_svg,
    tick_step,
    write_plot,
)

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"
SVG = "{http://www.w3.org/2000/svg}"


def hand_picture(tracks: int = 1, marks: tuple[Mark, ...] = ()) -> Picture:
    """A picture written by hand, no engine: up, lost, retried, up again."""
    bands = (Span(0, 3, "initializing"), Span(3, 50, "up"), Span(50, 51, "failed_recoverable"), Span(51, 100, "up"))
    return Picture(
        title="hand",
        subtitle="drawn by a test",
        duration=100,
        tracks=tuple(
            Track(host=f"node{i}@lvm", binary="volume", bands=bands, marks=marks,
                  backend=(Span(3, 20, "up"), Span(20, 50, "down")), conditions=(Span(40, 51, "driver not working"),))
            for i in range(tracks)
        ),
    )  # fmt: skip


def texts(svg: str) -> list[str]:
    return [element.text or "" for element in ET.fromstring(svg).iter(f"{SVG}text")]


def fills(svg: str) -> list[str]:
    return [element.get("fill", "") for element in ET.fromstring(svg).iter(f"{SVG}rect")]


def test_bands_use_the_diagrams_state_colours_and_the_legend_names_all_six_states():
    svg = render_svg(hand_picture())
    assert {TONES["working"].fill, TONES["healthy"].fill, TONES["recoverable"].fill} <= set(fills(svg))
    assert {"starting", "initializing", "failed_recoverable", "failed_permanent", "up", "down"} <= set(texts(svg))
    assert {"retry", "admin action refused", "backend_state up / down"} <= set(texts(svg))
    assert "node0@lvm" in texts(svg)


def test_every_mark_carries_its_notification_as_a_tooltip():
    marks = (
        Mark(50, "ERROR", "t=+50.000s driver.lost: up -> failed_recoverable"),
        Mark(51, "retry", "t=+51.000s retry"),
    )
    titles = [element.text for element in ET.fromstring(render_svg(hand_picture(marks=marks))).iter(f"{SVG}title")]
    assert "t=+50.000s driver.lost: up -> failed_recoverable" in titles and "t=+51.000s retry" in titles


def test_labels_share_two_lanes_and_one_that_fits_in_neither_stays_a_tooltip():
    crowded = tuple(Mark(at, "scenario", f"event at {at}", f"label{at}") for at in (10, 11, 12, 60))
    labels = [text for text in texts(render_svg(hand_picture(marks=crowded))) if text.startswith("label")]
    assert labels == ["label10", "label11", "label60"]


def test_a_fleet_gets_compact_rows_without_labels_and_an_axis_on_top():
    marks = (Mark(10, "scenario", "t=+10.000s reset", "reset"),)
    few, many = (render_svg(hand_picture(n, marks)) for n in (LABELLED_TRACKS, LABELLED_TRACKS + 1))
    assert "reset" in texts(few) and "reset" not in texts(many)
    per_row = [int(ET.fromstring(svg).get("height")) / n for svg, n in ((few, LABELLED_TRACKS), (many, 17))]
    assert per_row[1] < per_row[0] / 1.5
    assert texts(many).count("50") == 2  # tick labels above and below the rows


@pytest.mark.parametrize(("duration", "step"), [(10, 1), (120, 10), (600, 60), (3600, 300), (86400, 7200)])
def test_the_time_axis_counts_in_steps_people_use(duration: float, step: float):
    assert tick_step(duration) == step


def test_picture_of_a_heartbeat_loss_shows_the_cause_and_the_effect():
    picture = picture_of(run_scenario(load_scenario(SCENARIOS / "heartbeat_loss_and_recovery.yaml")))
    tracks = {track.host: track for track in picture.tracks}

    node1 = tracks["node1@lvm"]
    assert [(b.start, b.end, b.name) for b in node1.bands] == [(0, 180, "up"), (180, 310, "down"), (310, 600, "up")]
    assert node1.conditions == (Span(120, 300, "heartbeats blocked"),)
    assert [(m.at, m.label) for m in node1.marks if m.label] == [(120, "heartbeat_fail"), (300, "heartbeat_restore")]
    assert tracks["node2@lvm"].conditions == (Span(400, 500, "disabled"),)
    assert tracks["node1"].backend == ()  # backups have no backend_state


def test_picture_of_a_flapping_backend_keeps_backend_state_only_while_up():
    picture = picture_of(run_scenario(load_scenario(SCENARIOS / "flapping_backend.yaml")))
    node1 = picture.tracks[0]
    assert [(s.start, s.end, s.name) for s in node1.backend][:3] == [(0, 20, "up"), (20, 40, "down"), (40, 50, "up")]
    assert not [s for s in node1.backend if 160 < s.end <= 163]  # no backend_state while failed and retrying
    assert node1.conditions == (Span(155, 163, "driver not working"),)
    assert [m.at for m in node1.marks if m.kind == "retry"] == [161, 163]


def test_the_same_result_draws_the_same_bytes():
    result = run_scenario(load_scenario(SCENARIOS / "permanent_config_error.yaml"))
    assert render_svg(picture_of(result)) == render_svg(picture_of(result))
    assert render_html(picture_of(result)).startswith("<!DOCTYPE html>")


def test_write_plot_writes_svg_and_html_that_parse(tmp_path: Path):
    result = run_scenario(load_scenario(SCENARIOS / "backend_not_ready_at_start.yaml"))
    write_plot(result, tmp_path / "t.svg")
    write_plot(result, tmp_path / "t.html")
    assert "node4@iscsi" in texts((tmp_path / "t.svg").read_text(encoding="utf-8"))
    html = (tmp_path / "t.html").read_text(encoding="utf-8")
    ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])


def test_png_is_rendered_from_the_svg(tmp_path: Path):
    result = run_scenario(load_scenario(SCENARIOS / "backend_not_ready_at_start.yaml"))
    write_plot(result, tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == 1200  # IHDR width


def test_png_without_its_renderer_is_refused_with_the_way_out(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PlotError, match=r"\.png needs the optional renderer: pip install 'statecore\[png\]'.*\.svg"):
        check_plot_path(Path("t.png"))


def test_an_unknown_format_is_refused():
    with pytest.raises(PlotError, match=r"unknown format '\.gif'; use \.svg, \.html or \.png"):
        check_plot_path(Path("t.gif"))


def test_a_file_where_a_directory_should_be_is_refused(tmp_path: Path):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(PlotError, match=r"'.*taken' is not a directory"):
        check_plot_path(tmp_path / "taken" / "deeper" / "t.svg")


def test_a_missing_directory_is_created_like_a_state_directory(tmp_path: Path):
    """`--plot .statecore/timeline.svg` works before anything else has made .statecore/."""
    target = tmp_path / "absent" / "t.svg"
    check_plot_path(target)
    assert not target.parent.exists()  # checking writes nothing
