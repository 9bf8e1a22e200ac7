"""Domain errors to HTTP responses: one handler per error, one body shape for all.

Every error body is `{"error": <code>, "message": ..., "field": ...}`. Messages never echo
client input beyond field names, and are made ASCII-safe, so no input (a lone surrogate, a
megabyte-long key) can break the response or leak back unescaped.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from edu_domain import (
    AccountLocked,
    AlreadyExists,
    AuthenticationFailed,
    ConcurrencyConflict,
    DomainError,
    InvalidState,
    InvalidToken,
    NotFound,
    PermissionDenied,
    RetryableError,
    TenantViolation,
    UnavailableError,
    ValidationError,
)
from examples.fastapi_app.http_utils import PreconditionFailed

Handler = Callable[[Request, Exception], Awaitable[Response]]

_MAX_TEXT = 300
_BEARER_CHALLENGE = 'Bearer realm="edu-core"'
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})


def _safe(text: object) -> str:
    """Bounded and encodable: client-controlled text may hold anything."""
    value = str(text)
    if len(value) > _MAX_TEXT:
        value = value[:_MAX_TEXT] + "..."
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(
    status: int,
    error: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "message": _safe(message)}
    if field is not None:
        body["field"] = _safe(field)
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


async def on_validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return error_response(422, "validation", exc.message, field=exc.field)


async def on_request_validation(_: Request, exc: Exception) -> Response:
    """Pydantic's errors in our shape; the offending input is never echoed."""
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": [_safe(part) for part in error.get("loc", ())], "message": _safe(error["msg"])}
        for error in exc.errors()[:20]
    ]
    first = details[0] if details else {"loc": [], "message": "invalid request"}
    loc = list(first["loc"])
    if loc and loc[0] in _SOURCES and len(loc) > 1:
        loc = loc[1:]
    return error_response(
        422,
        "validation",
        str(first["message"]),
        field=".".join(str(part) for part in loc) or "body",
        errors=details,
    )


async def on_not_found(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFound)
    return error_response(404, "not_found", f"{exc.entity} not found")


async def on_tenant_violation(_: Request, exc: Exception) -> Response:
    """Another tenant's data is reported exactly like missing data."""
    return error_response(404, "not_found", "not found")


async def on_already_exists(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AlreadyExists)
    return error_response(409, "already_exists", str(exc), field=exc.field)


async def on_conflict(request: Request, exc: Exception) -> Response:
    """A lost update: 412 when the client made the write conditional, 409 otherwise."""
    assert isinstance(exc, ConcurrencyConflict)
    if request.headers.get("if-match") is not None:
        return error_response(412, "precondition_failed", "the entity has changed; reload it")
    return error_response(409, "conflict", "the entity was changed concurrently; retry")


async def on_precondition_failed(_: Request, exc: Exception) -> Response:
    return error_response(412, "precondition_failed", "If-Match does not match the entity")


async def on_locked(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AccountLocked)
    core = getattr(request.app.state, "core", None)
    now = core.deps.clock.now() if core is not None else exc.until
    return error_response(
        423,
        "account_locked",
        "too many failed logins; try again later",
        headers=_retry_after((exc.until - now).total_seconds()),
    )


async def on_authentication_failed(_: Request, exc: Exception) -> Response:
    return error_response(
        401,
        "authentication_failed",
        "invalid credentials",
        headers={"WWW-Authenticate": _BEARER_CHALLENGE},
    )


async def on_invalid_token(_: Request, exc: Exception) -> Response:
    """A bad bearer token is a 401; a bad mail token (verify, reset) is a bad request."""
    assert isinstance(exc, InvalidToken)
    if exc.purpose == "session":
        challenge = f'{_BEARER_CHALLENGE}, error="invalid_token"'
        return error_response(
            401,
            "invalid_token",
            "missing, invalid or expired session token",
            headers={"WWW-Authenticate": challenge},
        )
    return error_response(400, "invalid_token", str(exc))


async def on_permission_denied(_: Request, exc: Exception) -> Response:
    return error_response(403, "permission_denied", str(exc) or "not allowed")


async def on_invalid_state(_: Request, exc: Exception) -> Response:
    return error_response(409, "invalid_state", str(exc))


async def on_retryable(_: Request, exc: Exception) -> Response:
    return error_response(
        503, "retryable", "a transient failure; retry shortly", headers=_retry_after(1)
    )


async def on_unavailable(_: Request, exc: Exception) -> Response:
    return error_response(503, "unavailable", "a backing service is unavailable")


async def on_domain_error(_: Request, exc: Exception) -> Response:
    """Any future domain error without its own handler: refused, never a 500."""
    return error_response(400, "domain_error", type(exc).__name__)


async def on_http_exception(_: Request, exc: Exception) -> Response:
    """Framework errors in our shape. FastAPI's 400 for an unreadable body (bad UTF-8,
    absurd nesting) is a validation error like any other malformed body."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:
        return error_response(422, "validation", "the body is not valid JSON", field="body")
    return error_response(
        exc.status_code, _code(exc.status_code), str(exc.detail), headers=exc.headers
    )


def _code(status: int) -> str:
    """`not_found`, `method_not_allowed`, ...: the status phrase as an error code."""
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


HANDLERS: dict[type[Exception], Handler] = {
    ValidationError: on_validation,
    RequestValidationError: on_request_validation,
    NotFound: on_not_found,
    TenantViolation: on_tenant_violation,
    AlreadyExists: on_already_exists,
    ConcurrencyConflict: on_conflict,
    PreconditionFailed: on_precondition_failed,
    AccountLocked: on_locked,
    AuthenticationFailed: on_authentication_failed,
    InvalidToken: on_invalid_token,
    PermissionDenied: on_permission_denied,
    InvalidState: on_invalid_state,
    RetryableError: on_retryable,
    UnavailableError: on_unavailable,
    DomainError: on_domain_error,
    HTTPException: on_http_exception,
}


def install_error_handlers(app: FastAPI) -> None:
    for error, handler in HANDLERS.items():
        app.add_exception_handler(error, handler)
