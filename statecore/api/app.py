"""The HTTP API: Cinder's ``os-services`` over statecore, as an ASGI app.

``create_app(source, policy)`` is all an embedding service needs; ``statecore serve`` runs the
same app over a ``StoreSource``. Routes are plain functions: FastAPI runs them in its thread
pool, so a store query or an engine lock never blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response, Security
from fastapi.security import APIKeyHeader

from statecore.api.faults import ApiFault, install_fault_handlers
from statecore.api.microversion import HEADER, LOG_LEVEL, MAX_VERSION, MIN_VERSION, Version, negotiate
from statecore.api.policy import TOKEN_HEADER, Policy, StaticTokenPolicy, require_admin
from statecore.api.schemas import (
    DisableBody,
    DisableLogReasonBody,
    ResetBody,
    ResetDone,
    ServiceList,
    ServiceRef,
    StatusChange,
    Versions,
    faults,
)
from statecore.api.sources import Source, StoreSource
from statecore.api.views import reset_view, service_view, status_view, versions_view
from statecore.errors import UnknownService
from statecore.table import BINARY_OF, Binary

PREFIXES = ("/v3/{project_id}/os-services", "/v3/os-services")
"""With and without the project id: Cinder routes both at every microversion (3.67 only announced it)."""
INDEX_RULE = "volume_extension:services:index"
UPDATE_RULE = "volume_extension:services:update"
LOG_ACTIONS = ("get-log", "set-log")
LOG_LEVELS_NOT_SET = "get-log and set-log are not implemented: statecore keeps no log levels of Cinder services"
NOT_PERFORMED = {
    action: f"{action} is not implemented: statecore does no replication, so no backend is frozen"
    " or failed over (every row says frozen: false)"
    for action in ("freeze", "thaw", "failover_host")
}
"""Cinder's replication actions: answered 501 rather than a 200 that changed nothing."""
DESCRIPTION = f"""Cinder's service list and admin actions over statecore's lifecycle.

Microversions: header `{HEADER}: volume X.Y`, {MIN_VERSION} to {MAX_VERSION} (`latest` is {MAX_VERSION});
without one, {MIN_VERSION}. Bodies are Cinder's, key for key; `with_lifecycle=true` on the list adds
statecore's lifecycle fields. Errors are Cinder faults: `{{"badRequest": {{"code": 400, "message": "..."}}}}`.
See docs/api.md."""

Token = Annotated[str | None, Security(APIKeyHeader(name=TOKEN_HEADER, auto_error=False))]
VersionHeader = Annotated[
    str | None, Header(alias=HEADER, description=f"volume X.Y, {MIN_VERSION} to {MAX_VERSION}, or latest")
]
WithLifecycle = Annotated[
    bool,
    Query(description="statecore's own opt-in (Cinder has no such parameter): add lifecycle, attempts, "
          "total_attempts, retries_left, next_retry_at and last_error to every row"),
]  # fmt: skip


def microversion(request: Request, response: Response, header: VersionHeader = None) -> Version:
    """Negotiate once per request and echo the served version (errors echo it too, see faults.py)."""
    version = negotiate(header)
    request.state.microversion = version
    response.headers[HEADER] = version.header
    response.headers["Vary"] = HEADER
    return version


def project(project_id: Annotated[str, Path(description="the caller's project; not checked by statecore")]) -> None:
    """Declares the project id of the routes that carry one; statecore takes it as given."""


def admin_only(policy: Policy, rule: str) -> Callable[[str | None], None]:
    """A dependency that lets only admins through. As a dependency it runs before the body is
    validated, so a non-admin learns nothing about the body's schema (Cinder authorizes first too)."""

    def check(token: Token) -> None:
        require_admin(policy, token, rule)

    return check


def create_app(source: Source, policy: Policy, *, title: str = "statecore") -> FastAPI:
    """The ASGI app: ``source`` gives rows and takes admin actions, ``policy`` says who is admin.

    Only ``/openapi.json`` and the version documents (``/``, ``/v3/``) are open to anyone; the
    service list and the actions negotiate a microversion first, then need the admin role, as
    Cinder's default policy has it.
    """
    app = FastAPI(title=title, version=str(MAX_VERSION), description=DESCRIPTION, docs_url=None, redoc_url=None)
    install_fault_handlers(app)
    add_versions(app)
    for prefix in PREFIXES:
        app.include_router(services_router(source, policy, prefix))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


PROBES = ["GET", "HEAD", "OPTIONS"]
"""What the version documents answer: Cinder routes them with no method condition, and load
balancers probe with HEAD or OPTIONS (haproxy's ``option httpchk`` sends ``OPTIONS /``)."""


def add_versions(app: FastAPI) -> None:
    """Cinder's version documents: ``/`` answers 300 (Multiple Choices), ``/v3`` and ``/v3/`` 200, to
    GET, HEAD and OPTIONS alike. The routes that answer come first; the GET-only ones after them
    are what the OpenAPI document shows (FastAPI would name a several-method operation after
    whichever method its set yields first, which changes from run to run)."""
    versions = {"response_model": Versions, "response_model_exclude_none": True, "tags": ["versions"]}
    negotiated = [Depends(microversion)]

    def all_versions(request: Request) -> dict[str, Any]:
        """The API versions, for clients that discover the microversion range (no token needed)."""
        return versions_view(str(request.base_url))

    def v3(request: Request) -> dict[str, Any]:
        """The v3 version document, where openstacksdk and tempest look for it (no token needed)."""
        return versions_view(str(request.base_url))

    app.api_route("/", methods=PROBES, status_code=300, include_in_schema=False, **versions)(all_versions)  # type: ignore[arg-type]
    for path in ("/v3/", "/v3"):
        app.api_route(path, methods=PROBES, dependencies=negotiated, include_in_schema=False, **versions)(v3)  # type: ignore[arg-type]
    app.get("/", status_code=300, responses={300: {"model": Versions}}, **versions)(all_versions)  # type: ignore[arg-type]
    app.get("/v3/", dependencies=negotiated, **versions)(v3)  # type: ignore[arg-type]


def services_router(source: Source, policy: Policy, prefix: str) -> APIRouter:
    """``os-services`` under one prefix: the list and Cinder's actions, plus statecore's reset."""
    scoped = [Depends(project)] if "{project_id}" in prefix else []
    router = APIRouter(prefix=prefix, tags=["services"], dependencies=[*scoped, Depends(microversion)])
    reader, writer = Depends(admin_only(policy, INDEX_RULE)), Depends(admin_only(policy, UPDATE_RULE))
    changed = {200: {"model": StatusChange}, **faults(400, 401, 403, 404, 406, 409, 503)}

    @router.get("", dependencies=[reader], response_model=None,
                responses={200: {"model": ServiceList}, **faults(400, 401, 403, 406)})  # fmt: skip
    def list_services(
        version: Annotated[Version, Depends(microversion)],
        host: Annotated[str | None, Query(description="only this host (exact)")] = None,
        binary: Annotated[str | None, Query(description="cinder-volume or cinder-backup")] = None,
        with_lifecycle: WithLifecycle = False,
    ) -> dict[str, Any]:
        """Every service, in Cinder's fields. A ``binary`` other than cinder-volume or cinder-backup
        matches nothing, as in Cinder."""
        if binary is not None and binary not in BINARY_OF:
            return {"services": []}
        rows = source.rows(host=host, binary=None if binary is None else BINARY_OF[binary])
        return {"services": [service_view(row, version, lifecycle=with_lifecycle) for row in rows]}

    @router.put("/enable", dependencies=[writer], response_model=None, responses=changed)
    def enable(body: ServiceRef) -> dict[str, Any]:
        """Let a disabled service be picked for new work again; clears the reason."""
        return status_view(body, source.enable(*_resolve(source, body)), disabled_reason=None)

    @router.put("/disable", dependencies=[writer], response_model=None, responses=changed)
    def disable(body: DisableBody) -> dict[str, Any]:
        """Keep a service from new work; its lifecycle goes on. Without a reason statecore records
        "disabled by admin": a statecore disable always has a reason (Cinder's would be null)."""
        return status_view(body, source.disable(*_resolve(source, body), body.disabled_reason or "disabled by admin"))

    @router.put("/disable-log-reason", dependencies=[writer], response_model=None, responses=changed)
    def disable_log_reason(body: DisableLogReasonBody) -> dict[str, Any]:
        """Cinder's disable with a required reason."""
        row = source.disable(*_resolve(source, body), body.disabled_reason)
        return status_view(body, row, disabled_reason=body.disabled_reason)

    @router.put("/reset", dependencies=[writer], response_model=None, responses={**changed, 200: {"model": ResetDone}})
    def reset(body: ResetBody) -> dict[str, Any]:
        """statecore's own action, not Cinder's: send ``reset``, the only way out of ``failed_permanent``.
        409 where the table does not allow it, or where this server runs no engine (``statecore serve``)."""
        return reset_view(source.reset(*_resolve(source, body), body.reason or "reset by admin"))

    @router.put("/{action}", include_in_schema=False)
    def other_action(action: str, version: Annotated[Version, Depends(microversion)], token: Token) -> None:
        """Cinder's actions statecore does not perform answer 501 to an admin (Cinder would act);
        one Cinder has no route for, or not at this microversion, is 404 as in Cinder."""
        if action in NOT_PERFORMED or (action in LOG_ACTIONS and version >= LOG_LEVEL):
            require_admin(policy, token, UPDATE_RULE)
            raise ApiFault(501, NOT_PERFORMED.get(action, LOG_LEVELS_NOT_SET))
        raise ApiFault(404, "Not Found")

    return router


def _resolve(source: Source, body: ServiceRef) -> tuple[str, Binary]:
    """(host, statecore binary) of the service an action names, or UnknownService (404). ``binary``
    may be left out: a host name is never both a volume (``host@backend``) and a backup service."""
    named = body.binary or body.service
    if named is not None and named not in BINARY_OF:
        raise UnknownService(f"no service {body.host!r} with binary {named!r}")
    rows = source.rows(host=body.host, binary=None if named is None else BINARY_OF[named])
    if not rows:
        raise UnknownService(f"no service {body.host!r}" + (f" with binary {named!r}" if named else ""))
    return body.host, rows[0].binary


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, for ``statecore generate`` (docs/openapi.json). It does not depend on
    the source or the policy, so any will do."""
    from statecore.store import MemoryStore

    return create_app(StoreSource(MemoryStore()), StaticTokenPolicy("unused")).openapi()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document without its 422 answers: validation errors are Cinder's 400 here."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in document["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = document
    return app.openapi_schema
