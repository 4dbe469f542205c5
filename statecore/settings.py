"""Options (BEHAVIOR.md section 6): defaults < TOML file < environment < explicit values.

Every option is validated when loaded, so nothing starts on a bad
configuration; the error names the option, the value and the rule, because an
operator reading a log at 3 a.m. should not have to guess which knob is wrong.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

from loguru import logger
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from statecore.errors import SettingsError

Jitter = Literal["none", "full", "equal", "decorrelated"]
ENV_PREFIX = "STATECORE_"
ENGINE_WIDE = frozenset({"history_retention"})
"""Options of the engine, not of a service: a per-service value would mean nothing, so it is refused."""
_READ_ENV: ContextVar[bool] = ContextVar("_READ_ENV", default=True)


class _OptionalEnv(EnvSettingsSource):
    """The environment, unless the caller asked for exactly the values it gave (a scenario replay)."""

    def __call__(self) -> dict[str, Any]:
        return super().__call__() if _READ_ENV.get() else {}


class Settings(BaseSettings):
    """The engine's options; one instance is shared by every service without overrides."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    reinit_driver_count: int = Field(3, ge=0, description="int >= 0; 0 = unlimited retries")
    reinit_backoff_max: float = Field(300, gt=0, description="seconds > 0; cap of the backoff wait")
    reinit_backoff_jitter: Jitter = Field("none", description="none, full, equal or decorrelated")
    reinit_backoff_seed: int | None = Field(None, description="int, or unset for an unseeded jitter")
    backup_periodic_initialization: bool = Field(False, description="bool; backup retries periodically")
    periodic_interval: float = Field(60, gt=0, description="seconds > 0; backup retry period")
    init_timeout: float = Field(60, gt=0, description="seconds > 0; bound of a volume attempt")
    backup_initialization_timeout: float = Field(60, gt=0, description="seconds > 0; bound of a backup attempt")
    service_down_time: float = Field(60, gt=0, description="seconds > 0; liveness window")
    report_interval: float = Field(10, gt=0, description="seconds > 0; heartbeat period")
    backend_stats_polling_interval: float = Field(60, ge=3, description="seconds >= 3; volume stats period")
    enable_unsupported_driver: bool = Field(False, description="bool; run drivers marked unsupported")
    lease_time: float = Field(30, gt=0, description="seconds > 0; an engine's claim on a service, unrenewed")
    standby: bool = Field(False, description="bool; wait for services another engine drives (false: refuse)")
    history_retention: float = Field(
        7 * 86400, ge=0, description="seconds >= 0; transition history kept this long; 0 = forever; engine-wide"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _OptionalEnv(settings_cls)

    @model_validator(mode="after")
    def _correct_down_time(self) -> Settings:
        # Cinder rewrites a down time that a single late heartbeat would breach; so do we, loudly.
        if self.service_down_time <= self.report_interval:
            corrected = int(self.report_interval * 2.5)
            logger.warning(
                "service_down_time={} is <= report_interval={}; using {} instead",
                self.service_down_time,
                self.report_interval,
                corrected,
            )
            object.__setattr__(self, "service_down_time", float(corrected))
        return self

    @cached_property
    def down_window(self) -> timedelta:
        """``service_down_time`` as a timedelta, built once: every ``up`` entry and grace check
        adds it to an instant, and building a timedelta costs more than the addition."""
        return timedelta(seconds=self.service_down_time)

    @cached_property
    def init_windows(self) -> dict[str, timedelta]:
        """Each binary's init timeout as a timedelta, built once: every attempt arms its timeout."""
        return {
            "volume": timedelta(seconds=self.init_timeout),
            "backup": timedelta(seconds=self.backup_initialization_timeout),
        }

    def init_timeout_for(self, binary: str) -> float:
        return self.backup_initialization_timeout if binary == "backup" else self.init_timeout

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Settings:
        """A per-service copy; identical override sets share one validated instance."""
        if not overrides:
            return self
        if shared := ENGINE_WIDE.intersection(overrides):
            name = sorted(shared)[0]
            raise SettingsError(f"option {name!r} is engine-wide: set it in [settings], not per service")
        return _overridden(self, tuple(sorted(overrides.items())))


@lru_cache(maxsize=1024)
def _overridden(base: Settings, items: tuple[tuple[str, Any], ...]) -> Settings:
    return build_settings({**base.model_dump(exclude_unset=False), **dict(items)}, env=False)


def _rule(name: str) -> str:
    field = Settings.model_fields.get(name)
    return field.description if field is not None and field.description else "unknown option"


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        if item["type"] == "extra_forbidden":
            parts.append(f"unknown option {name!r} (value {item['input']!r})")
        else:
            parts.append(f"option {name!r}: value {item['input']!r} refused: {item['msg']} (rule: {_rule(name)})")
    return "; ".join(parts)


def build_settings(values: Mapping[str, Any], *, env: bool = True) -> Settings:
    """Validate ``values`` (plus the environment, which overrides a file) into Settings."""
    merged = dict(values)
    if env:
        merged.update(EnvSettingsSource(Settings)())
    token = _READ_ENV.set(env)
    try:
        return Settings.model_validate(merged)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None
    finally:
        _READ_ENV.reset(token)


def load_settings(path: str | Path | None = None, **explicit: Any) -> Settings:
    """Defaults, then ``path`` (a TOML file, its ``[settings]`` table if it has one), env, ``explicit``."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(read_toml_settings(Path(path)))
    settings = build_settings(values)
    return settings.with_overrides(explicit) if explicit else settings


def read_toml_settings(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"settings file {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SettingsError(f"settings file {str(path)!r} is not valid TOML: {error}") from None
    table = document.get("settings", document)
    if not isinstance(table, dict):
        raise SettingsError(f"settings file {str(path)!r}: [settings] must be a table")
    return table
