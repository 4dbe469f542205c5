"""Running the engine for real from a TOML file: ``statecore run CONFIG.toml``.

The file names the store (a SQLite file by default, so ``statecore
service-list`` can read it from another terminal), a JSON-lines notification
file, the options and the services with their drivers by import path. It is
validated whole before anything starts, and an error names the file and the
field.
"""

from __future__ import annotations

import importlib
import sys
import time
import tomllib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from rich.console import Console
from rich.live import Live
from rich.text import Text

from statecore.cli_options import port
from statecore.drivers import Classifier, default_classifier
from statecore.engine import Engine
from statecore.errors import SettingsError, StatecoreError
from statecore.notify import JsonLinesSink, LoguruSink, Sink
from statecore.registry import check_name
from statecore.screen import LiveView
from statecore.service import ServiceSpec
from statecore.settings import Settings, build_settings
from statecore.store import Store, open_store
from statecore.table import Binary
from statecore.validation import first_problem

if TYPE_CHECKING:
    from statecore.metrics import EngineMetrics


class ConfigFileError(StatecoreError):
    """A run configuration that cannot start; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceConfig(_Strict):
    host: str = Field(min_length=1)
    binary: Binary
    zone: str = "nova"
    driver: str = Field(min_length=1, description="import path, e.g. 'statecore.drivers_builtin:TcpVolumeDriver'")
    driver_options: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class MessagingConfig(_Strict):
    """``[messaging]``: notifications on the operator's message bus too (bus.py)."""

    transport_url: str = Field(min_length=1, description="oslo.messaging URL, e.g. 'rabbit://user:pass@host:5672/'")
    topics: list[str] = Field(default_factory=lambda: ["notifications"], min_length=1)
    driver: Literal["messagingv2", "messaging"] = "messagingv2"
    options: dict[str, Any] = Field(
        default_factory=dict, description="the transport's settings ([oslo_messaging_rabbit]), e.g. amqp_durable_queues"
    )


class RunConfig(_Strict):
    store: str = "statecore.sqlite"
    notifications: str | None = "notifications.jsonl"
    notifications_max_bytes: int = Field(100 * 2**20, ge=0, description="rotate the file past this; 0: never")
    notifications_backups: int = Field(3, ge=1, description="rotated files kept: .1 (newest) to .N")
    owner: str | None = None
    refresh: float = Field(1.0, gt=0)
    settings: dict[str, Any] = Field(default_factory=dict)
    services: list[ServiceConfig] = Field(default_factory=list)
    messaging: MessagingConfig | None = None
    metrics: str | None = Field(
        None, pattern=r"^[^\s]+:[0-9]{1,5}$", description="address:port to serve Prometheus metrics on"
    )
    cinder_config: str | None = Field(None, description="a cinder.conf whose services and drivers to supervise")

    @model_validator(mode="after")
    def _some_service(self) -> RunConfig:
        if not self.services and not self.cinder_config:
            raise ValueError("no service: add [[services]] or cinder_config")
        return self

    @field_validator("metrics")
    @classmethod
    def _metrics_port(cls, address: str | None) -> str | None:
        """The pattern checks the form; the port is checked as ``serve --port`` is (1 to 65535: port
        0 would serve on a port nobody knows)."""
        if address is not None:
            port("metrics")(int(address.rsplit(":", 1)[1]))
        return address


def load_run_config(path: str | Path) -> tuple[RunConfig, Path]:
    """The validated configuration and the directory its relative paths are relative to."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigFileError(f"{path}: cannot read the configuration: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigFileError(f"{path}: invalid TOML: {error}") from None
    try:
        return RunConfig.model_validate(document), path.resolve().parent
    except ValidationError as error:
        raise ConfigFileError(f"{path}: {first_problem(error, RunConfig)}") from None


def resolve(base: Path, target: str) -> str:
    """A store or file named relative to the configuration file, URLs untouched."""
    return target if "://" in target or target == "memory" else str(base / target)


def _with_parent(path: str) -> str:
    """A state directory named in the configuration (``.statecore/``) need not exist before the first run."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigFileError(f"{path}: cannot create its directory: {error.strerror or error}") from None
    return path


def build_engine(
    config: RunConfig, base: Path, *, store: Store | None = None, metrics: EngineMetrics | None = None
) -> Engine:
    """The engine the configuration describes, its services registered, not started; ``metrics``
    (``engine_metrics``) count its transitions and read its services."""
    try:
        settings = build_settings(config.settings)
    except SettingsError as error:
        raise ConfigFileError(f"settings: {error}") from None
    specs, classifier = cinder_services(config, base, settings)  # read before anything is opened or created
    sinks: list[Sink] = [LoguruSink()]
    if config.notifications:
        path = _with_parent(resolve(base, config.notifications))
        sinks.append(
            JsonLinesSink(path, max_bytes=config.notifications_max_bytes, backups=config.notifications_backups)
        )
    if config.messaging is not None:
        sinks.append(_messaging_sink(config.messaging))
    if store is None:
        target = resolve(base, config.store)
        store = open_store(target if "://" in target or target == "memory" else _with_parent(target))
    engine = Engine(settings, store=store, sinks=sinks, owner=config.owner, classifier=classifier)
    if metrics is not None:
        metrics.watch(engine)
    for index, service in enumerate(config.services):  # each checked here, so an error names its entry
        try:
            check_name(service.host, service.binary)
            settings.with_overrides(service.options)
        except StatecoreError as error:
            raise ConfigFileError(f"services[{index}]: {error}") from None
        options = service.options or None
        specs.append(
            ServiceSpec(service.host, service.binary, service.driver, service.zone, options, service.driver_options)
        )
    try:
        engine.add_services(specs)  # one store read and one write for the whole fleet
    except StatecoreError as error:
        raise ConfigFileError(f"services: {error}") from None
    return engine


def _messaging_sink(messaging: MessagingConfig) -> Sink:
    from statecore.bus import MessagingSink

    try:
        return MessagingSink(
            messaging.transport_url, topics=messaging.topics, driver=messaging.driver, options=messaging.options
        )
    except ValueError as error:
        raise ConfigFileError(f"messaging: {error}") from None


def engine_metrics(config: RunConfig) -> EngineMetrics | None:
    """The metrics ``build_engine`` wires in, if the configuration serves them (``metrics = "host:port"``)."""
    if config.metrics is None:
        return None
    from statecore.metrics import EngineMetrics

    return EngineMetrics()


@contextmanager
def metrics_server(metrics: EngineMetrics | None, address: str | None) -> Iterator[None]:
    """Serve ``metrics`` over HTTP (``GET /metrics``) on ``address`` while the block runs."""
    if metrics is None or address is None:
        yield
        return
    from prometheus_client import start_http_server

    host, port = address.rsplit(":", 1)
    try:
        server, thread = start_http_server(int(port), host.strip("[]"), registry=metrics.registry)
    except OSError as error:
        raise ConfigFileError(f"metrics: cannot listen on {address}: {error.strerror or error}") from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def cinder_services(config: RunConfig, base: Path, settings: Settings) -> tuple[list[ServiceSpec], Classifier]:
    """The services of ``cinder_config``, their options checked, and Cinder's classifier; none and
    the default classifier without it."""
    if not config.cinder_config:
        return [], default_classifier
    try:
        cinder = importlib.import_module("statecore.cinder")
    except ImportError as error:
        if (error.name or "").split(".")[0] not in ("cinder", "oslo_config", "oslo_utils", "oslo_concurrency"):
            raise
        raise ConfigFileError('cinder_config needs the cinder extra: pip install "statecore[cinder]"') from None
    try:
        specs = cinder.read_cinder_conf(Path(resolve(base, config.cinder_config)))
        for spec in specs:
            check_name(spec.host, spec.binary)
            settings.with_overrides(spec.options)
    except StatecoreError as error:
        raise ConfigFileError(f"cinder_config: {error}") from None
    cinder.route_cinder_logs()
    return specs, cinder.cinder_classifier


def run_live(
    engine: Engine,
    *,
    refresh: float,
    duration: float | None = None,
    console: Console | None = None,
) -> None:
    """Start the engine and show the live screen (screen.py) until Ctrl-C or ``duration``, then
    stop cleanly. The screen is looked at every ``refresh`` seconds and drawn only if it changed."""
    console = console or Console()
    deadline = None if duration is None else time.monotonic() + duration
    view = LiveView(engine, rows=max(5, console.size.height - 12))
    engine.start()
    try:
        with logs_above(console) as logs, Live(view.changed() or "", console=console, auto_refresh=False) as live:
            while (remaining := _remaining(deadline)) is None or remaining > 0:
                time.sleep(refresh if remaining is None else min(refresh, remaining))
                logs()
                screen = view.changed()
                if screen is not None:
                    live.update(screen, refresh=True)
    except KeyboardInterrupt:
        console.print("stopping: Ctrl-C")
    finally:
        engine.shutdown()
        close_sinks(engine.notifier.sinks)


def close_sinks(sinks: Sequence[Sink]) -> None:
    """After the engine's last delivery: sinks with connections of their own (the message bus's
    ``MessagingSink``) close them; ``run`` built the sinks, so it owns them."""
    for sink in sinks:
        close = getattr(sink, "close", None)
        if callable(close):
            try:
                close()
            except Exception as error:  # the engine has stopped; what is undelivered stays in the outbox
                logger.warning("could not close notification sink {}: {}", sink, error)


@contextmanager
def logs_above(console: Console) -> Iterator[Callable[[], None]]:
    """On a terminal, log lines go through the console that draws the live screen, which prints them
    above it and redraws it below: loguru's default handler writes to the stderr it found at import,
    at the cursor, across the table. INFO and above, as an operator watches the screen; the default
    handler is back afterwards. Piped output has no live region to break: the log stays on stderr.

    Lines are kept until the screen's next look (the call yielded) and printed then, together: each
    print redraws the live region, and a fleet starting logs a line per transition, tens of
    thousands in a second, which printed one by one took a core and more than the start itself."""
    global _default_handler
    if not console.is_terminal:
        yield lambda: None
        return
    try:
        logger.remove(_default_handler)  # a handler the embedder added is left alone
        default = True
    except ValueError:  # the embedder removed it
        default = False
    lines: deque[str] = deque()  # appends from any thread, pops by the screen's: no lock needed

    def flush() -> None:
        batch = [lines.popleft() for _ in range(len(lines))]
        if batch:
            console.print(Text.from_ansi("".join(batch).rstrip("\n")))

    sink = logger.add(lines.append, level="INFO", colorize=True)
    try:
        yield flush
    finally:
        logger.remove(sink)
        flush()
        if default:
            _default_handler = logger.add(sys.stderr)


_default_handler = 0
"""The id of loguru's default handler (to stderr), while ``logs_above`` has not replaced it."""


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()
