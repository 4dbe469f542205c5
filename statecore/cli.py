"""The ``statecore`` command: one entry point for operators and reviewers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import typer
from loguru import logger
from rich.console import Console

from statecore.cli_options import like_setting, port, seconds
from statecore.errors import StatecoreError, UnknownService
from statecore.registry import find
from statecore.screen import cinder_row, service_table
from statecore.store import Store, open_store, service_id
from statecore.table import BINARIES, BINARY_OF, Binary

HELP = {"help_option_names": ["-h", "--help"]}
"""``-h`` as well, on every command: subcommands inherit it from the top-level context."""
app = typer.Typer(
    help="Lifecycle of storage services as explicit state machines.", no_args_is_help=True, context_settings=HELP
)
console = Console()
PIPED_WIDTH = 200


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        typer.echo(f"statecore {version('statecore')}")
        raise typer.Exit()


@app.callback()
def root(
    _version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """statecore: volume and backup service lifecycles, their diagrams, docs and simulations."""


@app.command()
def demo(
    duration: Annotated[
        float, typer.Option("--seconds", callback=seconds("--seconds"), help="how long to run, in real seconds")
    ] = 8.0,
) -> None:
    """Run the engine for real for a few seconds, on a SQLite store in ./.statecore-demo: an array
    that starts answering after 2 s and a backup directory that appears after 3.5 s. Watch both
    services go from failed_recoverable to up."""
    from statecore.demo.services import DEMO_DIR, demo_config, staged_storage
    from statecore.live import build_engine, run_live

    with staged_storage(DEMO_DIR) as (port, storage_clocks):
        config = demo_config(DEMO_DIR, port)
        engine = build_engine(config, Path.cwd())
        storage_clocks()
        run_live(engine, refresh=config.refresh, duration=duration, console=_console())
    typer.echo(f"\nstore: {config.store}  (statecore service-list --db {config.store})")
    typer.echo(f"notifications: {config.notifications}")


@app.command()
def run(
    config_file: Annotated[Path, typer.Argument(metavar="CONFIG.toml", help="store, settings and services")],
    duration: Annotated[
        float | None,
        typer.Option(callback=seconds("--duration"), help="stop after so many seconds (default: Ctrl-C)"),
    ] = None,
) -> None:
    """Run the engine in real time on real drivers, with a live service list, until Ctrl-C.

    Notifications go to the log and to the JSON-lines file of the configuration; the store
    (SQLite by default) is what `statecore service-list` reads from another terminal or host.
    On a terminal, log lines are printed above the live table, never through it.
    """
    from statecore.live import build_engine, engine_metrics, load_run_config, metrics_server, run_live

    config, base = load_run_config(config_file)
    metrics = engine_metrics(config)
    engine = build_engine(config, base, metrics=metrics)
    with metrics_server(metrics, config.metrics):
        run_live(engine, refresh=config.refresh, duration=duration, console=_console())


DbOption = Annotated[str, typer.Option("--db", help="SQLite file or postgresql:// URL that `run` writes")]


TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        callback=seconds("--timeout", minimum=0.1),
        help="seconds to wait for the store before giving up with one line",
    ),
]


DownTimeOption = Annotated[
    float | None,
    typer.Option(
        "--service-down-time",
        callback=like_setting("--service-down-time", "service_down_time"),
        help="seconds without heartbeat before a service counts as down (default: what its engine used)",
    ),
]


@app.command("service-list")
def service_list(
    db: DbOption = "statecore.sqlite",
    host: Annotated[str | None, typer.Option("--host", help="only this host (host@backend for a volume)")] = None,
    binary: Annotated[
        str | None,
        typer.Option("--binary", help="only this binary: cinder-volume or cinder-backup (or volume, backup)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document, for machines")] = False,
    down_time: DownTimeOption = None,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Every service of every host in the store, as `cinder service-list` shows them (its columns, in
    its order, then statecore's own); state from heartbeat age on the database's clock, with the
    service_down_time each service's engine stored. Reads only: never creates a store."""
    wanted = None if binary is None else _binary_or_refuse(binary, "nothing was listed")
    rows = [
        row
        for row in _bounded(db, timeout, lambda: _existing_store(db).fleet(down_time))
        if (host is None or row.host == host) and wanted in (None, row.binary)
    ]
    if as_json:
        typer.echo(json.dumps({"services": [cinder_row(row) for row in rows]}, sort_keys=True))
    else:
        _console().print(service_table(rows, title=f"services in {db}"))


@app.command("backend-state")
def backend_state_command(
    config_file: Annotated[Path, typer.Option("--config", help="the CONFIG.toml that `run` uses")],
    host: Annotated[str | None, typer.Argument(help="a volume service (host@backend); default: all")] = None,
) -> None:
    """Ask each volume driver directly for its backend state, bypassing any cached value; a Cinder
    driver of cinder_config is set up first (do_setup, check_for_setup_error), within init_timeout."""
    from statecore.drivers import load_driver
    from statecore.live import ServiceConfig, cinder_services, load_run_config
    from statecore.probes import backend_state
    from statecore.service import ServiceSpec
    from statecore.settings import build_settings

    config, base = load_run_config(config_file)
    settings = build_settings(config.settings)
    cinder = cinder_services(config, base, settings)[0]
    services: list[ServiceConfig | ServiceSpec] = [*config.services, *cinder]
    volumes = [s for s in services if s.binary == "volume" and (host is None or s.host == host)]
    if not volumes:
        known = ", ".join(s.host for s in services if s.binary == "volume") or "none"
        wanted = "" if host is None else f" {host!r}"
        raise UnknownService(f"no volume service{wanted} in {config_file} (volume services: {known})")
    for service in volumes:
        try:
            driver = load_driver(service.driver, service.driver_options, enable_unsupported=True)
            if service in cinder:
                from statecore.cinder.drivers import set_up_within

                set_up_within(driver, settings.with_overrides(service.options).init_timeout)
            state = backend_state(service.host, driver)
        except StatecoreError as error:
            state = f"down ({error})"
        typer.echo(f"{service.host}\t{state}")


BinaryOption = Annotated[
    str | None,
    typer.Option("--binary", help="cinder-volume or cinder-backup (or volume, backup), when a host has both"),
]


@app.command()
def disable(
    host: Annotated[str, typer.Argument(help="the service's host (host@backend for a volume)")],
    reason: Annotated[str, typer.Option("--reason", help="why; shown in the service list")],
    db: DbOption = "statecore.sqlite",
    binary: BinaryOption = None,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Keep a service from being picked for new work; its lifecycle goes on."""
    typer.echo(_bounded(db, timeout, lambda: _set_status(db, host, binary, True, reason)))


@app.command()
def enable(
    host: Annotated[str, typer.Argument(help="the service's host (host@backend for a volume)")],
    db: DbOption = "statecore.sqlite",
    binary: BinaryOption = None,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Let a disabled service be picked for new work again."""
    typer.echo(_bounded(db, timeout, lambda: _set_status(db, host, binary, False, None)))


def _set_status(db: str, host: str, binary: str | None, disabled: bool, reason: str | None) -> str:
    wanted = None if binary is None else _binary_or_refuse(binary, f"nothing was {'dis' if disabled else 'en'}abled")
    store = _existing_store(db)
    stored = [state for b in BINARIES if wanted in (None, b) and (state := store.load(service_id(b, host)))]
    found = find(stored, host, None, where=f"in {db}")
    store.set_status(service_id(found.binary, host), disabled, reason)
    return f"{host} ({found.binary}): {'disabled: ' + str(reason) if disabled else 'enabled'}"


Answer = TypeVar("Answer")


def _bounded(db: str, timeout: float, call: Callable[[], Answer]) -> Answer:
    """Run ``call`` on the store for at most ``timeout`` seconds. A server stopped dead never
    answers and no driver timeout fires (its connections stay open), so the command gives up from
    the side, with one line that names the store (without its password). The thread is a daemon:
    the process exits without it. The store's own "unresponsive" warning is kept off this line."""
    from sqlalchemy.engine import make_url

    import statecore.store.sql  # noqa: F401  imported here: the time bounded is the store's, not the imports'

    answer: list[Answer] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            answer.append(call())
        except BaseException as error:  # handed to the main thread, which reports it
            failure.append(error)

    logger.disable("statecore.store")
    thread = threading.Thread(target=run, name="statecore-cli-store", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        shown = make_url(db).render_as_string(hide_password=True) if "://" in db else db
        raise StatecoreError(f"store did not answer within {timeout:g} s: {shown}")
    if failure:
        raise failure[0]
    return answer[0]


@app.command()
def purge(
    before: Annotated[str, typer.Option("--before", help="ISO 8601 date or date-time (UTC unless it says)")],
    db: DbOption = "statecore.sqlite",
    timeout: TimeoutOption = 5.0,
) -> None:
    """Delete transition history older than DATE, keeping each service's latest transition (Cinder's
    `cinder-manage db purge`); undelivered notifications are never deleted. A running engine does
    the same every hour for what is older than its `history_retention`. --timeout bounds the wait
    for the store (connecting, and each batch's wait for a lock or a statement), not the purge:
    a long one goes on, one batch after another."""
    cutoff = parse_instant(before)
    store = _bounded(db, timeout, lambda: _existing_store(db, busy_timeout=timeout, timeout=timeout))
    deleted = store.purge(cutoff)
    typer.echo(f"purged {deleted} history rows older than {cutoff.isoformat()} from {db}")


def parse_instant(text: str) -> datetime:
    """``2026-01-31`` (midnight UTC), ``2026-01-31T12:00:00Z`` or with an offset; naive means UTC.
    The future is refused: it would delete the history of what has not happened yet."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StatecoreError(
            f"--before {text!r}: not an ISO 8601 date or date-time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z);"
            " nothing was purged"
        ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > datetime.now(UTC):
        raise StatecoreError(f"--before {text!r} is in the future; nothing was purged")
    return moment


service_app = typer.Typer(help="Services in the store, whatever host runs them.", no_args_is_help=True)
app.add_typer(service_app, name="service")


@service_app.command("remove")
def service_remove(
    host: Annotated[str, typer.Argument(help="the service's host (host@backend for a volume)")],
    binary: Annotated[str, typer.Argument(help="volume or backup")],
    db: DbOption = "statecore.sqlite",
    down_time: DownTimeOption = None,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Delete a service that is gone, with its history and undelivered notifications (Cinder's
    `cinder-manage service remove BINARY HOST`, whose order is accepted too). Refused while its
    heartbeat is fresher than --service-down-time: stop its engine first."""
    host, binary = _host_and_binary(host, binary, "nothing was removed")
    removed = _bounded(db, timeout, lambda: _existing_store(db).remove_service(service_id(binary, host), down_time))
    typer.echo(
        f"removed {binary} {host} from {db}: {removed.history} history rows, {removed.outbox} undelivered notifications"
    )


@app.command()
def reset(
    host: Annotated[str, typer.Argument(help="the service's host (host@backend for a volume)")],
    binary: Annotated[str, typer.Argument(help="volume or backup (cinder-volume, cinder-backup)")],
    db: DbOption = "statecore.sqlite",
    timeout: TimeoutOption = 5.0,
) -> None:
    """Give a service a fresh start, e.g. after fixing its driver in the configuration: its stored
    state goes back to `starting`, its error and retry plan are forgotten, and the next `statecore
    run` loads its driver again and starts it with a full retry budget. For a stopped engine:
    refused while an engine holds the service (reset it through that engine) or its heartbeat is
    fresh."""
    host, binary = _host_and_binary(host, binary, "nothing was reset")
    fresh = _bounded(db, timeout, lambda: _existing_store(db).reset_service(service_id(binary, host)))
    typer.echo(
        f"reset {binary} {host} in {db}: {fresh.lifecycle.value}, error and retries cleared;"
        " the next engine to run it starts it from scratch"
    )


def _host_and_binary(first: str, second: str, refused: str) -> tuple[str, Binary]:
    """HOST BINARY, as every statecore command puts the host first; Cinder's BINARY HOST (and its
    ``cinder-volume`` names) when the second word is no binary but the first is: never ambiguous."""
    if _binary_named(second) is None and (swapped := _binary_named(first)) is not None:
        return second, swapped
    return first, _binary_or_refuse(second, refused)


def _binary_or_refuse(word: str, refused: str) -> Binary:
    binary = _binary_named(word)
    if binary is None:
        raise UnknownService(
            f"binary {word!r}: choose {' or '.join(BINARIES)} (or cinder-volume, cinder-backup); {refused}"
        )
    return binary


def _binary_named(word: str) -> Binary | None:
    """Either name: ``volume`` or Cinder's ``cinder-volume``."""
    return BINARY_OF.get(f"cinder-{word.removeprefix('cinder-')}")


@app.command()
def serve(
    db: DbOption = "statecore.sqlite",
    host: Annotated[str, typer.Option(help="address to listen on (loopback unless you mean otherwise)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(callback=port("--port"), help="TCP port; 8776 is Cinder's")] = 8776,
    admin_token_file: Annotated[
        Path | None, typer.Option(help="file holding the admin token (default: $STATECORE_ADMIN_TOKEN)")
    ] = None,
    down_time: DownTimeOption = None,
) -> None:
    """Serve the store's service list and disable/enable over HTTP, as Cinder's os-services (docs/api.md).

    Runs no engine: `reset` answers 409 and names the host whose engine must do it. The service
    list and the actions need the admin token in X-Auth-Token; without one the server does not start.
    """
    import os

    try:
        import uvicorn

        from statecore.api import StaticTokenPolicy, StoreSource, create_app
        from statecore.api.policy import admin_token
    except ImportError as error:
        raise StatecoreError(f"statecore serve needs the api extra ({error.name} is missing): "
                             "pip install 'statecore[api]'") from None  # fmt: skip
    from statecore.api.metrics import add_metrics

    policy = StaticTokenPolicy(admin_token(admin_token_file, os.environ))
    store = _existing_store(db)
    api = create_app(StoreSource(store, down_time), policy)
    add_metrics(api, store, down_time)
    uvicorn.run(api, host=host, port=port, log_level="info")


def _existing_store(db: str, **bounds: float) -> Store:
    """Open a store without creating one: a mistyped path (or ``sqlite:///`` URL) must not leave an
    empty database behind; a server's database is not created by opening it either, nor is its schema
    upgraded (``SqlStore``'s ``migrate``): every command here is an admin's on an engine's store, which
    only ``statecore run`` upgrades. An in-memory store would list nothing, silently."""
    from statecore.store import sqlite_path

    path = sqlite_path(db)
    if path is not None and not path.is_file():
        raise StatecoreError(f"no store at {db}: start `statecore run` (or `statecore demo`) first, or pass --db")
    if path is None and (db == "memory" or db.startswith("sqlite")):
        raise StatecoreError(
            f"store {db} is in memory, new and empty: pass the file or URL that `statecore run` writes"
        )
    return open_store(db, migrate=False, **bounds)


def _console() -> Console:
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


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
        _console().print(service_table(result.rows, title=f"after {result.duration:g} s"))
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
