"""The ``statecore`` command: one entry point for operators and reviewers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from loguru import logger
from rich.console import Console
from rich.table import Table

from statecore.errors import StatecoreError
from statecore.records import ServiceRow, iso

app = typer.Typer(help="Lifecycle of storage services as explicit state machines.", no_args_is_help=True)
console = Console()
PIPED_WIDTH = 200


@app.callback()
def root() -> None:
    """statecore: volume and backup service lifecycles, their diagrams, docs and simulations."""


def service_table(rows: list[ServiceRow], title: str = "services") -> Table:
    """The service list as operators read it; shared by every command that shows services."""
    table = Table(title=title)
    for column in ("host", "binary", "zone", "status", "state", "lifecycle", "backend_state", "updated_at",
                   "attempts", "next retry", "last error"):  # fmt: skip
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.host, row.binary, row.zone, row.status, row.state, row.lifecycle.value,
            row.backend_state or "-", iso(row.updated_at) or "-", str(row.total_attempts),
            iso(row.next_retry_at) or "-", row.last_error or "-",
        )  # fmt: skip
    return table


@app.command()
def demo(
    seconds: Annotated[float, typer.Option(help="how long to run, in real seconds")] = 6.0,
) -> None:
    """Run a real-time engine for a few seconds: a backend that is not ready at start, and a
    backup store that appears late; watch both reach ``up``."""
    from statecore.demo.services import run_demo

    engine = run_demo()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        engine.shutdown()
    console.print(service_table(engine.service_list(), title=f"after {seconds:g} s"))


@app.command()
def diagram(
    binary: Annotated[str, typer.Argument(help="volume or backup")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="mermaid, dot or svg")] = "mermaid",
) -> None:
    """Print a binary's lifecycle diagram, drawn from the table (svg needs Graphviz's dot)."""
    _print_rendered(binary, fmt, "diagram")


@app.command("table")
def table_command(
    binary: Annotated[str, typer.Argument(help="volume or backup")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="markdown")] = "markdown",
) -> None:
    """Print a binary's transition table, with each guard's meaning for that binary."""
    _print_rendered(binary, fmt, "table")


def _print_rendered(binary: str, fmt: str, kind: Literal["diagram", "table"]) -> None:
    """Plain stdout, not rich: labels like ``[unrecoverable]`` would be read as rich markup."""
    from statecore.render import get_format, graph_of

    typer.echo(get_format(fmt, kind).render(graph_of(binary)), nl=False)


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Option(help="root to write diagrams/ and docs/ under")] = Path("."),
    svg: Annotated[bool, typer.Option("--svg/--no-svg", help="also lay out SVG with Graphviz")] = True,
) -> None:
    """Rewrite every diagram and generated doc from the table, for review in the same change."""
    from statecore.render.generate import generate as write_artefacts

    for relative in write_artefacts(out_dir, svg=svg):
        typer.echo(f"wrote {relative}")


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(help="scenario file (YAML); see examples/scenarios/")],
    as_json: Annotated[
        bool, typer.Option("--json", help="one notification envelope a line, then the final service list")
    ] = False,
    plot: Annotated[Path | None, typer.Option(help="also draw the timeline to a .svg, .html or .png file")] = None,
) -> None:
    """Run a scenario through the real engine in virtual time: a day of a fleet in seconds.

    Prints the timeline of notifications and scenario events, then the final service list;
    the same scenario and seed give the same bytes.
    """
    from statecore.sim import load_scenario, run_scenario
    from statecore.sim.plot import check_plot_path, write_plot
    from statecore.sim.report import json_lines, timeline_text

    loaded = load_scenario(scenario)
    if plot is not None:
        check_plot_path(plot)  # before the run, so a bad format costs nothing
    # The engine's own log lines carry wall-clock stamps that mean nothing in virtual time; what they
    # report (a failing stats call, a malformed backend_state) is in the timeline as a backend_state change.
    logger.disable("statecore")
    try:
        result = run_scenario(loaded, scenario.stem)
    finally:
        logger.enable("statecore")
    if as_json:
        typer.echo(json_lines(result), nl=False)
    else:
        typer.echo(timeline_text(result))
        # Piped or captured output gets a fixed width wide enough for every column, and the same bytes each run.
        wide = console if console.is_terminal else Console(width=PIPED_WIDTH)
        wide.print(service_table(result.rows, title=f"after {result.duration:g} s"))
    if plot is not None:
        write_plot(result, plot)
        typer.echo(f"wrote {plot}", err=True)


def main() -> None:
    """Entry point: statecore's own errors become one plain line on stderr and exit code 2, never a
    traceback (plain text, not rich markup: messages quote brackets and paths verbatim)."""
    try:
        app()
    except StatecoreError as error:
        typer.echo("error: " + " ".join(str(error).splitlines()), err=True)
        raise SystemExit(2) from None
