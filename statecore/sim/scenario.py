"""The scenario file: services, their scripted drivers and timed operator events, in YAML.

A scenario is checked whole before anything runs, and a bad one gives one
error naming the file and the field (``scenario.yaml: services[0].driver.attempts[2]: ...``),
because a simulation that stops halfway through on a typo wastes the reader's
time and hides which line was wrong. Registration rules (service naming,
per-service options) are checked by registering the services with a real,
unstarted engine, so the simulator never keeps a second copy of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from statecore.engine import Engine
from statecore.errors import SettingsError, StatecoreError
from statecore.settings import Settings, build_settings
from statecore.table import Binary
from statecore.testing import Outcome, ScriptedDriver
from statecore.validation import first_problem

EventAction = Literal["heartbeat_fail", "heartbeat_restore", "driver_lost", "reset", "disable", "enable"]
TAKES_REASON = ("reset", "disable")
HOSTS_NAMED_IN_ERRORS = 8


class ScenarioError(StatecoreError):
    """A scenario file that cannot run; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriverScript(_Strict):
    """What a ``ScriptedDriver`` does: one outcome per attempt and one backend state per poll."""

    supported: bool = True
    attempts: list[Outcome] = Field(default=["ok"], min_length=1)
    init_seconds: float = Field(0.0, ge=0)
    backend_state: list[str] = Field(default=["up"], min_length=1)


class ServiceSpec(_Strict):
    """One service, or ``count`` of them when ``host`` has an ``{n}`` placeholder (n = 1 .. count)."""

    host: str = Field(min_length=1)
    binary: Binary
    zone: str = "nova"
    options: dict[str, Any] = Field(default_factory=dict)
    driver: DriverScript = Field(default_factory=DriverScript)
    count: int | None = Field(None, ge=1)

    def hosts(self) -> list[str]:
        """The expanded host names; raises ValueError with a reason when the placeholder is wrong."""
        if self.count is None:
            if "{" in self.host:
                raise ValueError("a host with a placeholder needs a count")
            return [self.host]
        if "{n" not in self.host:
            raise ValueError("with count, the host needs an {n} placeholder, e.g. 'node{n}@lvm'")
        try:
            return [self.host.format(n=n) for n in range(1, self.count + 1)]
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"bad placeholder ({error}); use {{n}} or a format like {{n:03d}}") from None


class EventSpec(_Strict):
    """Something done to one service at a virtual instant (seconds since start)."""

    at: float = Field(ge=0)
    host: str
    do: EventAction
    reason: str | None = None


class Scenario(_Strict):
    start: AwareDatetime | None = None
    seed: int = 0
    duration: float = Field(gt=0)
    settings: dict[str, Any] = Field(default_factory=dict)
    services: list[ServiceSpec] = Field(min_length=1)
    events: list[EventSpec] = Field(default_factory=list)

    def members(self) -> Iterator[Member]:
        """Every service after ``count`` expansion, with the index of the entry it came from."""
        for index, spec in enumerate(self.services):
            for host in spec.hosts():
                yield Member(index, host, spec)

    def engine_settings(self) -> Settings:
        """The scenario's settings over the defaults, never the environment's: a scenario replays the
        same on every machine. The scenario seed also seeds the backoff jitter unless the settings
        name their own.

        Every option is passed explicitly because ``build_settings(env=False)`` still lets
        pydantic-settings fill unspecified options from ``STATECORE_*``; explicit values win over it.
        """
        defaults = {name: field.default for name, field in Settings.model_fields.items()}
        return build_settings({**defaults, "reinit_backoff_seed": self.seed, **self.settings}, env=False)


@dataclass(frozen=True, slots=True)
class Member:
    index: int
    host: str
    spec: ServiceSpec


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and cross-check a scenario file; any problem is one ScenarioError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: cannot read the scenario: {error}") from None
    return parse_scenario(text, str(path))


def parse_scenario(text: str, source: str = "scenario") -> Scenario:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScenarioError(f"{source}: invalid YAML: {_yaml_problem(error)}") from None
    if not isinstance(document, Mapping):
        raise ScenarioError(f"{source}: a scenario is a mapping with duration, services and events")
    try:
        scenario = Scenario.model_validate(document)
    except ValidationError as error:
        raise ScenarioError(f"{source}: {first_problem(error, Scenario)}") from None
    problem = _cross_check(scenario)
    if problem is not None:
        raise ScenarioError(f"{source}: {problem}")
    return scenario


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


def _cross_check(scenario: Scenario) -> str | None:
    """What one field cannot say alone: settings, hosts, registration, events against hosts and duration."""
    try:
        settings = scenario.engine_settings()
    except SettingsError as error:
        return f"settings: {error}"
    return _check_services(scenario, settings) or _check_events(scenario, {m.host for m in scenario.members()})


def _check_services(scenario: Scenario, settings: Settings) -> str | None:
    engine = Engine.virtual_time(settings=settings, sinks=[])
    first_entry: dict[str, int] = {}
    for index, spec in enumerate(scenario.services):
        try:
            hosts = spec.hosts()
        except ValueError as error:
            return f"services[{index}].host: {error}"
        for host in hosts:
            if host in first_entry:
                return f"services[{index}].host: {host!r} is already defined by services[{first_entry[host]}]"
            first_entry[host] = index
            try:
                engine.add_service(host, spec.binary, ScriptedDriver(), zone=spec.zone, options=spec.options)
            except SettingsError as error:
                return f"services[{index}].options: {error}"
            except StatecoreError as error:
                return f"services[{index}].host: {error}"
    return None


def _check_events(scenario: Scenario, hosts: set[str]) -> str | None:
    for index, event in enumerate(scenario.events):
        if event.host not in hosts:
            known = ", ".join(sorted(hosts)[:HOSTS_NAMED_IN_ERRORS])
            others = f" and {len(hosts) - HOSTS_NAMED_IN_ERRORS} more" if len(hosts) > HOSTS_NAMED_IN_ERRORS else ""
            return f"events[{index}].host: unknown host {event.host!r} (hosts: {known}{others})"
        if event.at > scenario.duration:
            return f"events[{index}].at: {event.at:g} is beyond the duration ({scenario.duration:g} s)"
        if event.reason is not None and event.do not in TAKES_REASON:
            return f"events[{index}].reason: only reset and disable take a reason, not {event.do}"
    return None
