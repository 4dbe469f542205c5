"""The ``statecore`` command: one entry point for operators and reviewers."""

from __future__ import annotations

import time
from typing import Annotated

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


def main() -> None:
    """Entry point: statecore's own errors become one line and exit code 2, never a traceback."""
    try:
        app()
    except StatecoreError as error:
        console.print(f"[red]error:[/red] {error}")
        raise SystemExit(2) from None
