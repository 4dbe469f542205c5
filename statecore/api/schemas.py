"""Request bodies and documented responses: what ``/openapi.json`` promises, in one place.

Responses are built as plain dicts (``views.py``) because a field's presence depends on the
microversion; these models describe them, with the version-dependent fields optional.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, field_validator
from pydantic.json_schema import SkipJsonSchema

from statecore.api.faults import FAULT_NAMES, fault_name
from statecore.table import State

CinderBinary = Literal["cinder-volume", "cinder-backup"]
TIME = "UTC, Cinder's format without a zone designator: 2026-08-01T12:00:00.000000"
ReasonText = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"\S")]
"""A reason as Cinder accepts one: 1 to 255 characters, not only blanks."""


CINDER_HOST = r"^[a-zA-Z0-9-._#@:/+\[\]]*$"
"""Cinder's ``cinder_host`` pattern (``cinder/api/validation/parameter_types.py``): a host name with
its backend and pool, brackets for an IPv6 share."""


class ServiceRef(BaseModel):
    """Which service an admin action is for, in Cinder's request schema (``cinder/api/schemas/
    services.py``): ``binary`` and ``service`` (Cinder's deprecated name for it) are strings when
    given, never null; ``cluster`` is taken and ignored, as Cinder does for these actions. One
    leniency: ``binary`` may be left out when the host has one service (Cinder wants one of the two)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255, pattern=CINDER_HOST)
    binary: str | SkipJsonSchema[None] = Field(
        default=None, min_length=1, max_length=255, description="cinder-volume or cinder-backup"
    )
    service: str | SkipJsonSchema[None] = Field(
        default=None, min_length=1, max_length=255, description="deprecated: use binary"
    )
    cluster: str | None = Field(
        default=None, max_length=255, description="Cinder's; ignored: statecore has no clusters"
    )

    @field_validator("binary", "service", mode="before")
    @classmethod
    def not_null(cls, value: Any) -> Any:
        """Left out is fine; null is not, as in Cinder's schema (a string of 1 to 255 characters)."""
        if value is None:
            raise ValueError("must be a string when given, not null")
        return value


class DisableBody(ServiceRef):
    disabled_reason: ReasonText | None = None


class DisableLogReasonBody(ServiceRef):
    disabled_reason: ReasonText


class ResetBody(ServiceRef):
    reason: ReasonText | None = None


class ServiceView(BaseModel):
    """A row in Cinder's keys; the fields marked as such appear only where Cinder has them."""

    binary: CinderBinary
    host: str
    zone: str
    status: Literal["enabled", "disabled"]
    state: Literal["up", "down"]
    updated_at: str | None = Field(description=f"last heartbeat; {TIME}")
    backend_state: Literal["up", "down"] | None = Field(
        default=None, description="from 3.49, cinder-volume rows only; null while the service is not up"
    )
    cluster: None = Field(default=None, description="from 3.7; statecore has no clusters")
    disabled_reason: str | None
    replication_status: Literal["not-capable"] = Field(
        default="not-capable", description="cinder-volume rows only; statecore does no replication"
    )
    active_backend_id: None = Field(default=None, description="cinder-volume rows only")
    frozen: Literal[False] = Field(default=False, description="cinder-volume rows only")
    lifecycle: State | None = Field(default=None, description="with_lifecycle only: statecore's lifecycle state")
    attempts: int | None = Field(default=None, description="with_lifecycle only: attempt in the current budget")
    total_attempts: int | None = Field(default=None, description="with_lifecycle only")
    retries_left: int | None = Field(default=None, description="with_lifecycle only; null: unlimited")
    next_retry_at: str | None = Field(default=None, description=f"with_lifecycle only; {TIME}")
    last_error: str | None = Field(default=None, description="with_lifecycle only: the driver's last error")


class ServiceList(BaseModel):
    services: list[ServiceView]


class StatusChange(BaseModel):
    """Cinder's answer: ``service`` and ``binary`` echo the request (``""`` where it had none)."""

    host: str
    service: str
    binary: str
    status: Literal["enabled", "disabled"]
    disabled: bool
    disabled_reason: str | None = Field(default=None, description="enable (null) and disable-log-reason only")


class ResetDone(BaseModel):
    host: str
    binary: CinderBinary
    event: Literal["reset"]
    from_state: State
    to_state: State
    reason: str
    at: str = Field(description=TIME)
    attempt: int
    retries_left: int | None
    next_retry_at: str | None


class VersionLink(BaseModel):
    rel: str
    href: str
    type: str | None = None


class MediaType(BaseModel):
    base: str
    type: str


class VersionInfo(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    status: str
    version: str = Field(description="the maximum microversion")
    min_version: str
    updated: str
    links: list[VersionLink]
    media_types: list[MediaType] = Field(alias="media-types")


class Versions(BaseModel):
    versions: list[VersionInfo]


class FaultBody(BaseModel):
    code: int
    message: str


_FAULT_MODELS: dict[int, type[BaseModel]] = {
    code: create_model(f"Fault{code}", **{fault_name(code): (FaultBody, ...)})  # type: ignore[call-overload]
    for code in (*FAULT_NAMES, 406, 500)
}


def faults(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error codes, each in Cinder's fault shape."""
    return {code: {"model": _FAULT_MODELS[code], "description": f"{fault_name(code)} ({code})"} for code in codes}
