"""The CLI's numeric options, checked the way the settings are checked (settings.py).

A number given on the command line is as much an operator's choice as one in a
configuration file: ``--service-down-time -5`` is refused with the same words as
``service_down_time = -5`` in ``[settings]``, in one line that names the option,
and the command does nothing. An option that mirrors a setting takes that
setting's rule, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from statecore.errors import StatecoreError
from statecore.settings import Settings

Number = TypeVar("Number", int, float)


class OptionError(StatecoreError, ValueError):
    """A command-line value outside its rule; nothing was done. A ValueError too, so a model of a
    configuration file that checks a field by the same rule (run's ``metrics`` port) reports it as
    pydantic reports its own problems, with the file and the field."""


def _checker(
    option: str, kind: type[Number], rule: str, metadata: list[Any]
) -> Callable[[Number | None], Number | None]:
    form: Any = Annotated[kind, Field(allow_inf_nan=False), *metadata]  # built at run time: no static type
    adapter: TypeAdapter[Number] = TypeAdapter(form)

    def check(value: Number | None) -> Number | None:
        if value is None:  # an option left out: the command's own default
            return None
        try:
            return adapter.validate_python(value)
        except ValidationError as error:
            message = error.errors()[0]["msg"]
            raise OptionError(f"option {option!r}: value {value!r} refused: {message} (rule: {rule})") from None

    return check


def like_setting(option: str, setting: str) -> Callable[[float | None], float | None]:
    """The check of a setting, for the option that stands for it."""
    field = Settings.model_fields[setting]
    return _checker(option, float, field.description or setting, list(field.metadata))


def seconds(option: str, *, minimum: float = 0.0) -> Callable[[float | None], float | None]:
    """A finite number of seconds above ``minimum``."""
    return _checker(option, float, f"seconds > {minimum:g}", list(Field(gt=minimum).metadata))


def port(option: str) -> Callable[[int | None], int | None]:
    return _checker(option, int, "a TCP port, 1 to 65535", list(Field(ge=1, le=65535).metadata))
