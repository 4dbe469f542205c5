"""statecore: the lifecycle of storage services as explicit, table-driven state machines."""

from statecore.bus import MessagingSink
from statecore.clock import RealClock, VirtualClock
from statecore.drivers import Driver, VolumeDriver, default_classifier
from statecore.engine import Engine
from statecore.errors import (
    ConfigError,
    DriverNotSupported,
    InitTimeout,
    InvalidTransition,
    MissingDriverLibrary,
    NoServiceAvailable,
    ServiceUnavailable,
    SettingsError,
    StatecoreError,
    UnknownService,
    UnrecoverableError,
)
from statecore.notify import JsonLinesSink, LoguruSink, MemorySink, Sink
from statecore.records import ServiceRow, TransitionRecord
from statecore.service import ServiceSpec
from statecore.settings import Settings, load_settings
from statecore.table import Event, State, rulebook

__all__ = [
    "ConfigError",
    "Driver",
    "DriverNotSupported",
    "Engine",
    "Event",
    "InitTimeout",
    "InvalidTransition",
    "JsonLinesSink",
    "LoguruSink",
    "MemorySink",
    "MessagingSink",
    "MissingDriverLibrary",
    "NoServiceAvailable",
    "RealClock",
    "ServiceRow",
    "ServiceSpec",
    "ServiceUnavailable",
    "Settings",
    "SettingsError",
    "Sink",
    "State",
    "StatecoreError",
    "TransitionRecord",
    "UnknownService",
    "UnrecoverableError",
    "VirtualClock",
    "VolumeDriver",
    "default_classifier",
    "load_settings",
    "rulebook",
]
