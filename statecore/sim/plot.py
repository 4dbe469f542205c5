"""A simulation as a picture: one row per service, coloured bands per lifecycle state over virtual time.

Two stages, as for the diagrams: ``picture_of`` turns a result into plain
dataclasses (bands, conditions, marks), and ``render_svg`` draws only those,
so the drawing can be tested with a picture written by hand. The state
colours are the diagrams' (``statecore.render.style``), so a reviewer reads the
same colour as the same state in both. SVG is written as text (deterministic,
no plotting library); ``.html`` embeds it, where hovering a mark shows its
notification; ``.png`` needs the small optional ``resvg-py`` renderer.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

from statecore.errors import StatecoreError
from statecore.render.graph import graph_of
from statecore.render.style import TONES, Colours
from statecore.sim.runner import Line, SimResult
from statecore.table import BINARIES, State

MarkKind = Literal["retry", "INFO", "WARN", "ERROR", "scenario", "refused"]
FORMATS = (".svg", ".html", ".png")
STATES = tuple(state.value for state in State)
# Outside the state palette, so a mark never reads as a state.
INK = {"INFO": "#455a64", "WARN": "#e65100", "ERROR": "#c62828", "retry": "#1565c0", "scenario": "#6a1b9a",
       "refused": "#c62828"}  # fmt: skip
BACKEND = {"up": "#2e7d32", "down": "#263238"}
CONDITION_INK = "#6a1b9a"
# Scenario events that start a condition, and what ends it (a scenario event or a notification event_type).
CONDITIONS = {
    "heartbeat_fail": ("heartbeats blocked", "heartbeat_restore"),
    "disable": ("disabled", "enable"),
    "driver_lost": ("driver not working", "init.success"),
}
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_TICKS = ("INFO", "WARN", "ERROR")
LABELLED_TRACKS = 16  # above this many rows, the compact layout: scenario marks keep their text in tooltips

WIDTH = 1200
MARGIN_RIGHT, FONT = 28, "DejaVu Sans, Arial, Helvetica, sans-serif"


class PlotError(StatecoreError):
    """A plot that cannot be written in the asked format."""


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float
    name: str


@dataclass(frozen=True, slots=True)
class Mark:
    at: float
    kind: MarkKind
    text: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Track:
    host: str
    binary: str
    bands: tuple[Span, ...]
    marks: tuple[Mark, ...] = ()
    backend: tuple[Span, ...] = ()
    conditions: tuple[Span, ...] = ()


@dataclass(frozen=True, slots=True)
class Picture:
    title: str
    subtitle: str
    duration: float
    tracks: tuple[Track, ...]


# -- result -> picture -----------------------------------------------------------------------------


def picture_of(result: SimResult) -> Picture:
    by_host: dict[str, list[Line]] = {host: [] for host in result.binaries}
    for line in result.lines:
        by_host[line.host].append(line)
    tracks = tuple(_track(host, binary, by_host[host], result.duration) for host, binary in result.binaries.items())
    subtitle = (
        f"{len(tracks)} services, {result.duration:g} s of virtual time from {result.start.isoformat()}, "
        f"{len(result.envelopes)} notifications"
    )
    return Picture(title=result.name, subtitle=subtitle, duration=result.duration, tracks=tracks)


def _track(host: str, binary: str, lines: Sequence[Line], duration: float) -> Track:
    transitions = [(line.at, line.to_state or "") for line in lines if line.kind == "notification"]
    bands = _spans([(0.0, State.STARTING.value), *transitions], duration)
    samples = [(line.at, line.to_state or "") for line in lines if line.kind == "observed"]
    backend = _clip(_spans([(0.0, "up"), *samples], duration), [b for b in bands if b.name == State.UP.value])
    return Track(
        host=host,
        binary=binary,
        bands=bands,
        marks=tuple(mark for line in lines if line.kind != "observed" for mark in _marks(line)),
        backend=backend if binary == "volume" else (),
        conditions=_conditions(lines, duration),
    )


def _spans(changes: Sequence[tuple[float, str]], duration: float) -> tuple[Span, ...]:
    """Piecewise-constant spans from (instant, value) changes; empty spans (same-instant moves) dropped."""
    ends = [at for at, _ in changes[1:]] + [duration]
    return tuple(Span(at, end, name) for (at, name), end in zip(changes, ends, strict=True) if end > at)


def _clip(spans: Iterable[Span], windows: Sequence[Span]) -> tuple[Span, ...]:
    """The parts of ``spans`` inside ``windows`` (a volume's backend_state means something only while up)."""
    clipped = []
    for span in spans:
        for window in windows:
            start, end = max(span.start, window.start), min(span.end, window.end)
            if end > start:
                clipped.append(Span(start, end, span.name))
    return tuple(clipped)


def _conditions(lines: Sequence[Line], duration: float) -> tuple[Span, ...]:
    """What the scenario imposed on a service and for how long: blocked heartbeats, disabled, dead driver."""
    open_since: dict[str, float] = {}
    spans = []
    for line in lines:
        for cause, (name, ender) in CONDITIONS.items():
            if cause in open_since and line.what == ender and line.kind in ("scenario", "notification"):
                spans.append(Span(open_since.pop(cause), line.at, name))
        if line.kind == "scenario" and line.what in CONDITIONS:
            open_since.setdefault(line.what, line.at)
    spans += [Span(start, duration, CONDITIONS[cause][0]) for cause, start in open_since.items()]
    return tuple(sorted(spans, key=lambda span: (span.start, span.name)))


def _marks(line: Line) -> tuple[Mark, ...]:
    """A notification's tick (a retry's triangle), and a labelled mark for what the scenario or an admin did."""
    text = f"t=+{line.at:.3f}s {line.what}"
    if line.kind == "notification":
        text += f": {line.from_state} -> {line.to_state}"
    text += f" ({line.detail})"
    if line.kind != "notification":
        return (Mark(line.at, line.kind, text, line.what),)  # type: ignore[arg-type]
    tick = Mark(line.at, "retry" if line.event == "retry" else line.priority or "INFO", text)  # type: ignore[arg-type]
    return (tick, Mark(line.at, "scenario", text, "reset")) if line.event == "reset" else (tick,)


# -- picture -> SVG ----------------------------------------------------------------------------------


@cache
def state_colours(binary: str, state: str) -> Colours:
    """The diagrams' colours for a state, so the plot and ``diagrams/`` agree."""
    return TONES[graph_of(binary).state(state).tone]


@dataclass(frozen=True, slots=True)
class Layout:
    """Row geometry in px, top to bottom: label lanes, ticks, the band, the backend and conditions strips."""

    row: float
    lanes: int
    tick: float
    band_y: float
    band: float
    strip: float


FULL = Layout(row=60, lanes=2, tick=8, band_y=30, band=16, strip=5)
# A fleet: no labels (tooltips keep them), thin rows, so a hundred services fit on a few screens.
COMPACT = Layout(row=28, lanes=0, tick=5, band_y=6, band=13, strip=3)


@dataclass(frozen=True, slots=True)
class _Frame:
    """Where things go: the plot area's edges, the seconds it spans, and the row layout."""

    left: float
    right: float
    duration: float
    layout: Layout

    def x(self, seconds: float) -> float:
        return self.left + (self.right - self.left) * min(max(seconds, 0.0), self.duration) / self.duration


def render_svg(picture: Picture) -> str:
    layout = FULL if len(picture.tracks) <= LABELLED_TRACKS else COMPACT
    gutter = max(120.0, 7.2 * max((len(track.host) for track in picture.tracks), default=0) + 24)
    frame = _Frame(gutter, WIDTH - MARGIN_RIGHT, picture.duration, layout)
    legend, legend_bottom = _legend(64)
    top = legend_bottom + (40 if layout is COMPACT else 16)
    rows = [_row(track, frame, top + i * layout.row, i) for i, track in enumerate(picture.tracks)]
    bottom = top + len(picture.tracks) * layout.row
    grid, labels = _axis(frame, top, bottom, above=layout is COMPACT)
    height = bottom + 60
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="{FONT}" font-size="12">',
        f"<title>{escape(picture.title)}</title>",
        _defs(),
        f'<rect width="{WIDTH}" height="{height:.0f}" fill="#ffffff"/>',
        f'<text x="16" y="26" font-size="18" font-weight="bold">{escape(picture.title)}</text>',
        f'<text x="16" y="46" fill="#455a64">{escape(picture.subtitle)}</text>',
    ]
    return "\n".join([*head, *legend, *grid, *rows, *labels, "</svg>"]) + "\n"


def _defs() -> str:
    return (
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f3e5f5"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{CONDITION_INK}" stroke-width="2"/></pattern></defs>'
    )


def _legend(y: float) -> tuple[list[str], float]:
    """Two lines: the six states in the diagrams' colours, then what the marks and strips mean."""
    items: list[tuple[str, str]] = []
    for state in STATES:
        colours = state_colours(BINARIES[0], state)
        swatch = f'<rect width="22" height="14" y="-11" fill="{colours.fill}" stroke="{colours.stroke}"/>'
        items.append((swatch, state))
    states, y_after = _flow(items, y)
    conditions = " / ".join(name for name, _ in CONDITIONS.values())
    marks = [
        (_tick_shape(4, -10, "INFO", 9) + _tick_shape(10, -10, "WARN", 9) + _tick_shape(16, -10, "ERROR", 9),
         "notification (INFO / WARN / ERROR)"),
        (_retry_shape(8, -1), "retry"),
        (_scenario_shape(8, -4), "scenario or admin event"),
        (_refused_shape(8, -4), "admin action refused"),
        ('<rect width="22" height="8" y="-8" fill="url(#hatch)"/>', conditions),
        (f'<rect width="11" height="5" y="-6" fill="{BACKEND["up"]}"/>'
         f'<rect x="11" width="11" height="5" y="-6" fill="{BACKEND["down"]}"/>', "backend_state up / down"),
    ]  # fmt: skip
    marks_svg, y_end = _flow(marks, y_after + 8)
    return [*states, *marks_svg], y_end


def _flow(items: Sequence[tuple[str, str]], y: float) -> tuple[list[str], float]:
    """Legend items left to right, wrapping at the page width; returns them and the next free y."""
    out, x = [], 16.0
    for shape, text in items:
        width = 30 + 6.6 * len(text) + 18
        if x + width > WIDTH - MARGIN_RIGHT:
            x, y = 16.0, y + 22
        out.append(f'<g transform="translate({x:.1f},{y:.1f})">{shape}<text x="30">{escape(text)}</text></g>')
        x += width
    return out, y + 10


def _row(track: Track, frame: _Frame, y: float, index: int) -> str:
    """A service's row, top to bottom: labels of scenario marks, notification ticks, the state bands
    (retries and scenario marks on them), the backend_state strip, the conditions strip."""
    layout = frame.layout
    band_y = y + layout.band_y
    parts = [
        f'<g class="service"><title>{escape(track.host)} ({track.binary})</title>',
        f'<rect x="0" y="{y:.1f}" width="{WIDTH}" height="{layout.row}" '
        f'fill="{"#f5f7f8" if index % 2 else "#ffffff"}"/>',
        f'<text x="{frame.left - 10:.1f}" y="{band_y + layout.band / 2 + 4:.1f}" text-anchor="end" '
        f'font-weight="bold">{escape(track.host)}</text>',
    ]
    parts += [_band(track.binary, band, frame, band_y) for band in track.bands]
    strip_y = band_y + layout.band + 1
    parts += [
        _span_rect(span, frame, strip_y, layout.strip, BACKEND[span.name], f"backend_state {span.name}")
        for span in track.backend
    ]
    parts += [
        _span_rect(span, frame, strip_y + layout.strip + 1, layout.strip, "url(#hatch)", span.name)
        for span in track.conditions
    ]
    # Ticks first, so the rarer retry, scenario and refused marks are drawn over them.
    parts += [_mark_svg(mark, frame, band_y) for mark in track.marks if mark.kind in _TICKS]
    parts += [_mark_svg(mark, frame, band_y) for mark in track.marks if mark.kind not in _TICKS]
    parts += _labels(track.marks, frame, y)
    parts.append("</g>")
    return "\n".join(parts)


def _labels(marks: Sequence[Mark], frame: _Frame, y: float) -> list[str]:
    """Scenario and refused marks named above the row, in the layout's lanes; a label that fits in
    none is left to the mark's tooltip rather than drawn over another."""
    lanes = [-math.inf] * frame.layout.lanes
    out = []
    for mark in marks:
        if not mark.label:
            continue
        width = 5.9 * len(mark.label) + 4
        start = min(frame.x(mark.at) - 3, frame.right - width)
        lane = next((i for i, end in enumerate(lanes) if end < start), None)
        if lane is None:
            continue
        lanes[lane] = start + width
        out.append(
            f'<text x="{start:.2f}" y="{y + 10 + 10 * lane:.1f}" font-size="10" fill="{INK[mark.kind]}">'
            f"{escape(mark.label)}</text>"
        )
    return out


def _band(binary: str, band: Span, frame: _Frame, y: float) -> str:
    colours = state_colours(binary, band.name)
    edge = f' stroke="{colours.stroke}" stroke-width="0.6"'
    return _span_rect(band, frame, y, frame.layout.band, colours.fill, band.name, edge)


def _span_rect(span: Span, frame: _Frame, y: float, height: float, fill: str, what: str, edge: str = "") -> str:
    x0, x1 = frame.x(span.start), frame.x(span.end)
    return (
        f'<rect x="{x0:.2f}" y="{y:.1f}" width="{max(x1 - x0, 0.6):.2f}" height="{height}" fill="{fill}"{edge}>'
        f"<title>{escape(what)}: t=+{span.start:g}s to t=+{span.end:g}s</title></rect>"
    )


def _mark_svg(mark: Mark, frame: _Frame, band_y: float) -> str:
    layout = frame.layout
    x, middle = frame.x(mark.at), band_y + layout.band / 2
    if mark.kind in _TICKS:
        shape = _tick_shape(x, band_y - layout.tick, mark.kind, layout.tick)
    elif mark.kind == "retry":
        shape = _retry_shape(x, band_y + layout.band - 1)
    elif mark.kind == "scenario":
        shape = _scenario_shape(x, middle)
    else:
        shape = _refused_shape(x, middle)
    return f"<g><title>{escape(mark.text)}</title>{shape}</g>"


def _tick_shape(x: float, y: float, priority: str, length: float) -> str:
    ink = INK[priority]
    return f'<line x1="{x:.2f}" y1="{y:.1f}" x2="{x:.2f}" y2="{y + length:.1f}" stroke="{ink}" stroke-width="2"/>'


def _retry_shape(x: float, y: float) -> str:
    return (
        f'<path d="M{x:.2f},{y - 8:.1f} L{x + 4.5:.2f},{y:.1f} L{x - 4.5:.2f},{y:.1f} Z" '
        f'fill="{INK["retry"]}" stroke="#ffffff" stroke-width="0.8"/>'
    )


def _scenario_shape(x: float, y: float) -> str:
    return (
        f'<path d="M{x:.2f},{y - 6:.1f} L{x + 6:.2f},{y:.1f} L{x:.2f},{y + 6:.1f} L{x - 6:.2f},{y:.1f} Z" '
        f'fill="{INK["scenario"]}" stroke="#ffffff" stroke-width="1"/>'
    )


def _refused_shape(x: float, y: float, d: float = 5) -> str:
    cross = f"M{x - d:.2f},{y - d:.1f} L{x + d:.2f},{y + d:.1f} M{x - d:.2f},{y + d:.1f} L{x + d:.2f},{y - d:.1f}"
    return f'<path d="{cross}" stroke="{INK["refused"]}" stroke-width="2.5"/>'


def _axis(frame: _Frame, top: float, bottom: float, above: bool) -> tuple[list[str], list[str]]:
    """Grid lines (drawn under the rows) and tick labels (over them), in seconds since the start;
    a tall picture gets its labels above the rows too."""
    step = tick_step(frame.duration)
    grid, labels = [], [f'<line x1="{frame.left}" y1="{bottom}" x2="{frame.right}" y2="{bottom}" stroke="#37474f"/>']
    for index in range(int(frame.duration // step) + 1):
        seconds = index * step
        x = frame.x(seconds)
        grid.append(f'<line x1="{x:.2f}" y1="{top}" x2="{x:.2f}" y2="{bottom}" stroke="#cfd8dc" stroke-width="0.8"/>')
        labels.append(f'<line x1="{x:.2f}" y1="{bottom}" x2="{x:.2f}" y2="{bottom + 5}" stroke="#37474f"/>')
        labels.append(f'<text x="{x:.2f}" y="{bottom + 18}" text-anchor="middle">{seconds:g}</text>')
        if step >= 3600:
            labels.append(
                f'<text x="{x:.2f}" y="{bottom + 30}" text-anchor="middle" font-size="10" fill="#455a64">'
                f"{seconds / 3600:g} h</text>"
            )
        if above:
            labels.append(f'<text x="{x:.2f}" y="{top - 8}" text-anchor="middle">{seconds:g}</text>')
    middle = (frame.left + frame.right) / 2
    labels.append(f'<text x="{middle:.1f}" y="{bottom + 46}" text-anchor="middle" fill="#455a64">'
                  "virtual time since start (s)</text>")  # fmt: skip
    return grid, labels


def tick_step(duration: float, most: int = 12) -> float:
    """A step people count in (1, 2, 5 s ... 1 min, 5 min ... 1 h ... 1 day) giving at most ``most`` ticks."""
    for step in TICK_STEPS:
        if duration / step <= most:
            return float(step)
    return float(TICK_STEPS[-1] * math.ceil(duration / TICK_STEPS[-1] / most))


# -- files -----------------------------------------------------------------------------------------------


def render_html(picture: Picture) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f'<title>{escape(picture.title)}</title></head>\n<body style="margin:0">\n'
        f"{render_svg(picture)}</body>\n</html>\n"
    )


def check_plot_path(path: Path) -> None:
    """Refuse what cannot be written before the simulation runs, not after."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise PlotError(f"plot {str(path)!r}: unknown format {suffix or '(none)'!r}; use .svg, .html or .png")
    existing = next(parent for parent in (path.parent, *path.parent.parents) if parent.exists())
    if not existing.is_dir():  # a missing directory is created when the plot is written; a file in the way is not
        raise PlotError(f"plot {str(path)!r}: {str(existing)!r} is not a directory")
    if suffix == ".png" and importlib.util.find_spec("resvg_py") is None:
        raise PlotError(
            f"plot {str(path)!r}: .png needs the optional renderer: pip install 'statecore[png]' (resvg-py); "
            "or write .svg or .html"
        )


def write_plot(result: SimResult, path: Path) -> None:
    check_plot_path(path)
    picture = picture_of(result)
    suffix = path.suffix.lower()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".png":
            path.write_bytes(render_png(render_svg(picture)))
        else:
            path.write_text(render_html(picture) if suffix == ".html" else render_svg(picture), encoding="utf-8")
    except OSError as error:
        raise PlotError(f"plot {str(path)!r}: cannot write it: {error}") from None


def render_png(svg: str) -> bytes:
    import resvg_py

    return bytes(resvg_py.svg_to_bytes(svg_string=svg, background="#ffffff"))
