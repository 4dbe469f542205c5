"""Who is calling: a ``Policy`` maps the ``X-Auth-Token`` header to the caller's roles.

The embedding service brings its own (a Keystone token check, say); the standalone server uses
``StaticTokenPolicy`` with one admin token from its configuration. The service list and every
admin action need the ``admin`` role, as Cinder's default policy says.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from statecore.api.faults import ApiFault
from statecore.errors import StatecoreError

ADMIN = "admin"
TOKEN_HEADER = "X-Auth-Token"
TOKEN_ENV = "STATECORE_ADMIN_TOKEN"


class Policy(Protocol):
    def roles(self, token: str) -> frozenset[str] | None:
        """The roles of the caller holding ``token``, or None if the token is not valid."""
        ...


class StaticTokenPolicy:
    """Fixed tokens from configuration: ``admin_token`` has the admin role; ``tokens`` maps more
    tokens to their roles (for a member who may use an embedding service's own endpoints)."""

    def __init__(self, admin_token: str, tokens: Mapping[str, Iterable[str]] | None = None) -> None:
        if not admin_token:
            raise StatecoreError("the admin token is empty")
        self._tokens = {token: frozenset(roles) for token, roles in (tokens or {}).items()}
        self._tokens[admin_token] = frozenset({ADMIN})

    def roles(self, token: str) -> frozenset[str] | None:
        """Constant-time comparison against every known token, so timing tells nothing about them."""
        found = None
        for known, roles in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = roles
        return found


def roles_of(policy: Policy, token: str | None) -> frozenset[str]:
    """The caller's roles; 401 (Cinder's ``unauthorized``) without a valid token."""
    roles = policy.roles(token) if token else None
    if roles is None:
        raise ApiFault(401, "The request you have made requires authentication.")
    return roles


def require_admin(policy: Policy, token: str | None, rule: str) -> None:
    """401 without a valid token, 403 (Cinder's ``forbidden``, naming Cinder's policy rule) for a
    caller without the admin role."""
    if ADMIN not in roles_of(policy, token):
        raise ApiFault(403, f"Policy doesn't allow {rule} to be performed.")


def admin_token(token_file: Path | None, environ: Mapping[str, str]) -> str:
    """The standalone server's admin token: ``--admin-token-file`` wins over the environment.

    Without either there is no way to authorize anyone, so the server must not start.
    """
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise StatecoreError(f"cannot read the admin token file {token_file}: {error.strerror}") from None
        if not token:
            raise StatecoreError(f"the admin token file {token_file} is empty")
        return token
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise StatecoreError(f"no admin token: pass --admin-token-file FILE or set {TOKEN_ENV}")
    return token
