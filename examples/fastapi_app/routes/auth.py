"""Signing in and out, sessions, password change and reset, email verification."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response

from edu_domain import (
    AuthenticationFailed,
    InvalidToken,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from edu_domain.model import Organization
from edu_domain.services import EduCore, Scope
from examples.fastapi_app.dependencies import CallerDep, CoreDep
from examples.fastapi_app.http_utils import client_ip, user_agent
from examples.fastapi_app.schemas.auth import (
    AcceptedOut,
    EmailVerification,
    LoginIn,
    LoginOut,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    RevokedOut,
    SessionOut,
)
from examples.fastapi_app.schemas.common import BODY, SIGNED_IN, errors

router = APIRouter(prefix="/auth", tags=["auth"])


async def _organization(core: EduCore, slug: str) -> Organization | None:
    """The organization a sign-in form names; None rather than an error that would tell a
    stranger which organizations exist."""
    try:
        return await core.organizations.get_by_slug(slug)
    except (NotFound, ValidationError):
        return None


@router.post(
    "/login",
    summary="Sign in; returns a bearer session token",
    responses=errors(*BODY, 401, 403, 409, 423),
)
async def login(body: LoginIn, request: Request, core: CoreDep) -> LoginOut:
    """Records the client's IP address and User-Agent on the session. Repeated failures lock
    the account (423 with Retry-After). The right password of a suspended or deactivated
    account, an unverified address (where the policy requires it) or an inactive organization
    is a 403; a sign-in that keeps losing races on the same user (retried first) is a 409."""
    org = await _organization(core, body.organization)
    if org is None:  # as slow as a real check: the answer's timing names no organization
        await core.auth.reject(body.password)
    result = await core.auth.authenticate(
        Scope.anonymous(org.id),
        body.login,
        body.password,
        ip_address=client_ip(request),
        user_agent=user_agent(request),
    )
    return LoginOut(
        token=result.token, session_id=result.session.id, expires_at=result.session.expires_at
    )


@router.post(
    "/logout",
    status_code=204,
    summary="Revoke the session of this token",
    responses=errors(*SIGNED_IN, 409),
)
async def logout(caller: CallerDep, core: CoreDep) -> Response:
    await core.auth.revoke_session(caller.scope, caller.principal.session_id)
    return Response(status_code=204)


@router.get(
    "/sessions",
    summary="The caller's active sessions, newest first",
    responses=errors(*SIGNED_IN),
)
async def sessions(caller: CallerDep, core: CoreDep) -> list[SessionOut]:
    active = await core.auth.get_active_sessions(caller.scope, caller.user_id)
    return [
        SessionOut.model_validate(s).model_copy(
            update={"current": s.id == caller.principal.session_id}
        )
        for s in active
    ]


@router.post(
    "/sessions/revoke-all",
    summary="Revoke every session of the caller (this one too)",
    responses=errors(*SIGNED_IN, 409),
)
async def revoke_all(caller: CallerDep, core: CoreDep) -> RevokedOut:
    return RevokedOut(revoked=await core.auth.revoke_all_sessions(caller.scope, caller.user_id))


@router.delete(
    "/sessions/{session_id:uuid}",
    status_code=204,
    summary="Revoke one of own sessions",
    responses=errors(*SIGNED_IN, 404, 409),
)
async def revoke_session(session_id: UUID, caller: CallerDep, core: CoreDep) -> Response:
    """Only the caller's own active sessions can be revoked here; any other id is a 404."""
    active = await core.auth.get_active_sessions(caller.scope, caller.user_id)
    if all(s.id != session_id for s in active):
        raise NotFound("LoginSession", session_id)
    await core.auth.revoke_session(caller.scope, session_id)
    return Response(status_code=204)


@router.post(
    "/password",
    summary="Change the password; signs out every session",
    responses=errors(*SIGNED_IN, *BODY, 403, 409),
)
async def change_password(body: PasswordChange, caller: CallerDep, core: CoreDep) -> RevokedOut:
    """A wrong current password is a 403: the session is fine, the proof is not."""
    try:
        revoked = await core.auth.change_password(
            caller.scope, caller.user_id, body.current_password, body.new_password
        )
    except AuthenticationFailed:
        raise PermissionDenied("the current password is wrong") from None
    return RevokedOut(revoked=revoked)


@router.post(
    "/password-reset/request",
    status_code=202,
    summary="Mail a password reset link (the answer never says whether the address exists)",
    responses=errors(*BODY),
)
async def request_password_reset(body: PasswordResetRequest, core: CoreDep) -> AcceptedOut:
    org = await _organization(core, body.organization)
    if org is not None:
        await core.auth.request_password_reset(Scope.anonymous(org.id), body.email)
    return AcceptedOut()


@router.post(
    "/password-reset/confirm",
    status_code=204,
    summary="Set a new password with a reset token",
    responses=errors(*BODY, 400, 409),
)
async def confirm_password_reset(body: PasswordResetConfirm, core: CoreDep) -> Response:
    org = await _organization(core, body.organization)
    if org is None:
        raise InvalidToken("password reset")
    await core.auth.reset_password(Scope.anonymous(org.id), body.token, body.new_password)
    return Response(status_code=204)


@router.post(
    "/verify-email",
    status_code=204,
    summary="Confirm an email address with its token",
    responses=errors(*BODY, 400, 409),
)
async def verify_email(body: EmailVerification, core: CoreDep) -> Response:
    org = await _organization(core, body.organization)
    if org is None:
        raise InvalidToken("email verification")
    await core.verification.verify_email(Scope.anonymous(org.id), body.token)
    return Response(status_code=204)
