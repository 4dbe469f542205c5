"""The ``statecore`` command: one entry point for operators and reviewers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from statecore.errors import StatecoreError
from statecore.records import ServiceRow, iso

app = typer.Typer(help="Lifecycle of storage services as explicit state machines.", no_args_is_help=True)
console = Console()


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


def main() -> None:
    """Entry point: statecore's own errors become one line and exit code 2, never a traceback."""
    try:
        app()
    except StatecoreError as error:
        console.print(f"[red]error:[/red] {error}")
        raise SystemExit(2) from None
