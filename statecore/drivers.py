"""The driver protocol an embedding service implements, and how drivers are loaded and judged.

A driver is any object with ``do_setup()`` and ``check_for_setup_error()``;
``supported``, ``is_working()`` and (volume) ``get_volume_stats(refresh)`` are
optional, as in Cinder. Drivers may also be named by import path, so a config
file can choose one; an import that fails is the unrecoverable "driver library
missing" of the spec.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from statecore.errors import ConfigError, DriverNotSupported, MissingDriverLibrary, UnrecoverableError


@runtime_checkable
class Driver(Protocol):
    def do_setup(self) -> None: ...

    def check_for_setup_error(self) -> None: ...


@runtime_checkable
class VolumeDriver(Driver, Protocol):
    def get_volume_stats(self, refresh: bool = False) -> Mapping[str, Any]: ...


Classifier = Callable[[BaseException], bool]
"""Returns True when an init error is unrecoverable (no retry can fix it)."""


def default_classifier(error: BaseException) -> bool:
    """The final spec's list: config error, unsupported driver, missing library; all else retries."""
    return isinstance(error, UnrecoverableError | ImportError)


def import_object(path: str) -> Any:
    """``pkg.module:Name`` or ``pkg.module.Name``; any import failure is MissingDriverLibrary."""
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"driver {path!r} is not an import path like 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise MissingDriverLibrary(f"driver {path!r}: cannot import {module_name!r}: {error}") from error
    try:
        return getattr(module, attr)
    except AttributeError:
        raise MissingDriverLibrary(f"driver {path!r}: module {module_name!r} has no {attr!r}") from None


DriverSpec = Driver | str | Callable[..., Driver]


def load_driver(spec: DriverSpec, options: Mapping[str, Any] | None, enable_unsupported: bool) -> Driver:
    """Build the driver and check it may run; raises the unrecoverable error that says why not."""
    factory = import_object(spec) if isinstance(spec, str) else spec
    if isinstance(factory, Driver) and not isinstance(factory, type):
        driver = factory
    else:
        try:
            driver = factory(**dict(options or {}))
        except UnrecoverableError:
            raise
        except Exception as error:
            raise ConfigError(f"driver {_name(factory)} cannot be built from its options: {error}") from error
    if not isinstance(driver, Driver):
        raise ConfigError(f"{_name(driver)} is not a driver: it lacks do_setup/check_for_setup_error")
    if not getattr(driver, "supported", True) and not enable_unsupported:
        raise DriverNotSupported(f"driver {_name(driver)} is unsupported and enable_unsupported_driver is false")
    return driver


def _name(thing: object) -> str:
    kind = thing if isinstance(thing, type) else type(thing)
    return f"{kind.__module__}.{kind.__qualname__}"
