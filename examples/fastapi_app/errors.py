"""Domain errors to HTTP responses: one handler per error, one body shape for all.

Every error body is `{"error": <code>, "message": ..., "field": ...}`, the framework's own
errors (404, 405, 413, 415, malformed JSON) included. Messages never echo client input: a
field or parameter the client named is repeated only when it is a plain identifier.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
from examples.fastapi_app.guards import allowed_methods
from examples.fastapi_app.http_utils import (
    BadRequest,
    BodyTooLarge,
    MissingCredentials,
    PreconditionFailed,
    UnknownQueryParameters,
)

Handler = Callable[[Request, Exception], Awaitable[Response]]

_MAX_TEXT = 300
_BEARER_CHALLENGE = 'Bearer realm="edu-core"'
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_UNNAMED = "(unnamed)"
#: Pydantic messages that would repeat our long patterns or the input, in plain words.
_MESSAGES = {
    "string_pattern_mismatch": "has characters or a form this field does not allow",
    "json_invalid": "the body is not valid JSON",
    "extra_forbidden": "is not a field of this request",
    "missing": "is required",
}


def _safe(text: object) -> str:
    """Bounded and encodable: client-controlled text may hold anything."""
    value = str(text)
    if len(value) > _MAX_TEXT:
        value = value[:_MAX_TEXT] + "..."
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _name(part: object) -> str:
    """A location part as it may be shown: indices and plain identifiers, nothing else."""
    text = str(part)
    return text if isinstance(part, int) or _IDENTIFIER.fullmatch(text) else _UNNAMED


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


async def on_request_validation(request: Request, exc: Exception) -> Response:
    """Pydantic's errors in our shape. A body that is not JSON is a 415; malformed JSON names
    the `body` (pydantic reports a character offset); the offending input is never echoed."""
    assert isinstance(exc, RequestValidationError)
    errors: Sequence[Mapping[str, Any]] = exc.errors()
    if _not_json(request) and any(e.get("loc", ())[:1] == ("body",) for e in errors):
        return error_response(415, "unsupported_media_type", "send the body as application/json")
    details = [_detail(error) for error in errors[:20]]
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


def _detail(error: Mapping[str, Any]) -> dict[str, Any]:
    kind = error.get("type", "")
    loc = [_name(part) for part in error.get("loc", ())]
    if kind == "json_invalid":
        loc = ["body"]
    return {"loc": loc, "message": _MESSAGES.get(kind) or _safe(error.get("msg", "invalid"))}


def _not_json(request: Request) -> bool:
    """A Content-Type that FastAPI will not read as JSON (none at all is read as JSON)."""
    value = request.headers.get("content-type")
    if value is None:
        return False
    media = value.split(";", 1)[0].strip().lower()
    return not (
        media == "application/json"
        or (media.startswith("application/") and media.endswith("+json"))
    )


async def on_unknown_query(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, UnknownQueryParameters)
    names = [_name(name) for name in exc.names]
    details = [
        {"loc": ["query", name], "message": "is not a parameter of this route"} for name in names
    ]
    return error_response(
        422, "validation", "unknown query parameter", field=names[0], errors=details[:20]
    )


async def on_bad_request(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return error_response(400, "bad_request", exc.message, field=exc.field)


async def on_body_too_large(_: Request, exc: Exception) -> Response:
    return too_large()


def too_large() -> JSONResponse:
    return error_response(413, "content_too_large", "the request body is too large")


async def on_missing_credentials(_: Request, exc: Exception) -> Response:
    """RFC 6750: a request without credentials gets the challenge without an error code."""
    return error_response(
        401,
        "not_authenticated",
        "send Authorization: Bearer <token> (from POST /auth/login)",
        headers={"WWW-Authenticate": _BEARER_CHALLENGE},
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
    return error_response(
        503, "unavailable", "a backing service is unavailable", headers=_retry_after(5)
    )


async def on_domain_error(_: Request, exc: Exception) -> Response:
    """Any future domain error without its own handler: refused, never a 500."""
    return error_response(400, "domain_error", type(exc).__name__)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Framework errors in our shape. FastAPI's 400 for an unreadable body (bad UTF-8,
    absurd nesting) is a validation error like any other malformed body; a 405 names every
    method the path allows, not only those of the first route that matched."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, BodyTooLarge):
        return too_large()
    if exc.status_code == 400:
        return error_response(422, "validation", "the body is not valid JSON", field="body")
    headers = dict(exc.headers or {})
    message = _code(exc.status_code).replace("_", " ")
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
    return error_response(exc.status_code, _code(exc.status_code), message, headers=headers)


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
    MissingCredentials: on_missing_credentials,
    BadRequest: on_bad_request,
    UnknownQueryParameters: on_unknown_query,
    BodyTooLarge: on_body_too_large,
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
