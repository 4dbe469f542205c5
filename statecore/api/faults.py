"""Errors in Cinder's shape: ``{"<faultName>": {"code": N, "message": "..."}}``.

The names are Cinder's ``wsgi.Fault._fault_names``; a code it does not name (406 among them)
is a ``computeFault``, exactly as Cinder answers an unsupported microversion. Every error a
route can meet goes through here, so no client ever sees FastAPI's ``{"detail": ...}`` shape,
and an unexpected exception becomes Cinder's generic 500 text, never its own message (which
may carry a driver's error or configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from statecore.errors import InvalidTransition, ServiceUnavailable, StatecoreError, UnknownService
from statecore.store.base import StoreUnavailable

FAULT_NAMES: dict[int, str] = {
    400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
    409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 501: "notImplemented",
    503: "serviceUnavailable",
}  # fmt: skip
DEFAULT_FAULT = "computeFault"
SERVER_ERROR = "The server has either erred or is incapable of performing the requested operation."

STATUS_OF: tuple[tuple[type[StatecoreError], int], ...] = (
    (UnknownService, 404),
    (InvalidTransition, 409),
    (StoreUnavailable, 503),
    (ServiceUnavailable, 503),
    (StatecoreError, 400),
)
"""statecore's errors by HTTP status, most specific first; their messages are meant for callers."""


class ApiFault(Exception):
    """Raise anywhere under a route to answer with a Cinder-shaped error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fault_name(code: int) -> str:
    return FAULT_NAMES.get(code, DEFAULT_FAULT)


def fault_body(code: int, message: str) -> dict[str, Any]:
    return {fault_name(code): {"code": code, "message": message}}


def fault_response(request: Request, code: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The error response; it echoes the negotiated microversion when there was one, as Cinder's Fault
    does. ``headers``: what the error itself carries (a 405's ``Allow``)."""
    response = JSONResponse(fault_body(code, message), status_code=code, headers=headers)
    version = getattr(request.state, "microversion", None)
    if version is not None:
        response.headers["OpenStack-API-Version"] = version.header
        response.headers["Vary"] = "OpenStack-API-Version"
    return response


def status_of(error: StatecoreError) -> int:
    return next(code for kind, code in STATUS_OF if isinstance(error, kind))


def install_fault_handlers(app: FastAPI) -> None:
    """Route every error a request can raise to a Cinder-shaped response."""

    async def on_fault(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiFault)
        return fault_response(request, error.code, error.message)

    async def on_statecore(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StatecoreError)
        return fault_response(request, status_of(error), " ".join(str(error).splitlines()))

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        headers = dict(error.headers or {})
        if "Allow" in headers:  # a route's methods are a set: name them in one order, every time
            headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
        return fault_response(request, error.status_code, str(error.detail), headers)

    async def on_invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return fault_response(request, 400, validation_message(error))

    async def on_crash(request: Request, error: Exception) -> JSONResponse:
        return fault_response(request, 500, SERVER_ERROR)

    app.add_exception_handler(ApiFault, on_fault)
    app.add_exception_handler(StatecoreError, on_statecore)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(Exception, on_crash)


def validation_message(error: RequestValidationError) -> str:
    """Cinder's wording for a request that fails its schema; names the fields, never echoes their values."""
    if any(item.get("type") == "json_invalid" for item in error.errors()):
        return "Malformed message body: cannot understand JSON"
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "request body"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "Invalid input for field/attribute " + "; ".join(parts) + "."
