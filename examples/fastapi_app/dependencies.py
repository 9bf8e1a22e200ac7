"""FastAPI dependencies: the embedded core, the authenticated caller, the bootstrap key.

The tenant and the actor of every request come from the session token alone; no header or
body field a client chooses can name another organization.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from uuid import UUID

from attrs import frozen
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from edu_domain import InvalidToken, PermissionDenied, UnavailableError, ValidationError
from edu_domain.model import UserRole
from edu_domain.services import EduCore, Principal, Scope
from examples.fastapi_app.http_utils import MissingCredentials
from examples.fastapi_app.settings import Settings

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="SessionToken",
    description="The `token` returned by POST /auth/login.",
)
_bootstrap_key = APIKeyHeader(
    name="X-Bootstrap-Key",
    auto_error=False,
    scheme_name="BootstrapKey",
    description="Operator key for POST /organizations (env EDU_BOOTSTRAP_KEY).",
)


def get_core(request: Request) -> EduCore:
    """The core the lifespan put on `app.state`; 503 if the app was not started."""
    core: EduCore | None = getattr(request.app.state, "core", None)
    if core is None:
        raise UnavailableError("the service is not started")
    return core


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


CoreDep = Annotated[EduCore, Depends(get_core)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


@frozen
class Caller:
    """The authenticated user of a request and the scope every use case runs in: the core
    checks the user's role against `edu_domain.policy` in each use case."""

    principal: Principal

    @property
    def scope(self) -> Scope:
        return Scope(self.principal.organization_id, self.principal.user_id)

    @property
    def user_id(self) -> UUID:
        return self.principal.user_id

    @property
    def role(self) -> UserRole:
        return self.principal.role


async def current_caller(
    request: Request,
    core: CoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Resolve `Authorization: Bearer <token>`. No Bearer credentials at all (no header, or
    another scheme such as Basic) is a MissingCredentials: RFC 6750 3.1 gives those the bare
    challenge. A Bearer header that is not a live session token is an InvalidToken (both 401)."""
    if credentials is None:
        scheme = request.headers.get("authorization", "").split(maxsplit=1)[:1]
        if scheme != [] and scheme[0].lower() == "bearer":
            raise InvalidToken("session")
        raise MissingCredentials
    try:
        principal = await core.auth.resolve(credentials.credentials)
    except ValidationError:
        raise InvalidToken("session") from None
    return Caller(principal)


CallerDep = Annotated[Caller, Depends(current_caller)]


async def require_bootstrap_key(
    settings: SettingsDep, key: Annotated[str | None, Depends(_bootstrap_key)]
) -> None:
    """Organizations are created by operators: the request must carry the configured key."""
    if key is None or not hmac.compare_digest(
        key.encode("utf-8", "surrogateescape"), settings.bootstrap_key.encode("utf-8")
    ):
        raise PermissionDenied("a valid X-Bootstrap-Key header is required")
