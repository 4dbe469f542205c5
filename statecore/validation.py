"""Pydantic errors in an operator's words: one line naming the field path and what is wrong.

Shared by every file statecore reads (scenarios, run configurations), so a typo
is reported the same way wherever it is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from pydantic import BaseModel, ValidationError


def field_path(loc: Sequence[int | str]) -> str:
    """``('services', 0, 'driver', 'attempts', 2)`` -> ``services[0].driver.attempts[2]``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def first_problem(error: ValidationError, root: type[BaseModel]) -> str:
    """The first of pydantic's errors, with the count of the others, if any."""
    items = error.errors()
    item = items[0]
    kind, value, loc = item["type"], item.get("input"), item["loc"]
    if kind == "literal_error":
        choices = str(item.get("ctx", {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
        message = f"{value!r} is not one of {choices}"
    elif kind == "extra_forbidden":
        message = f"unknown field (allowed: {', '.join(fields_at(root, loc[:-1]))})"
    elif kind == "missing":
        message = "required field is missing"
    else:
        shown = repr(value) if isinstance(value, str | int | float | list | dict) else str(value)
        message = f"{item['msg']} (got {shown})"
    more = f" (and {len(items) - 1} more problem{'s' if len(items) > 2 else ''})" if len(items) > 1 else ""
    return f"{field_path(loc)}: {message}{more}"


def fields_at(root: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The fields a model at ``loc`` allows, found by walking the model classes along the path."""
    model = root
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        found = [a for a in (annotation, *get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not found:
            return []
        model = found[0]
    return list(model.model_fields)
