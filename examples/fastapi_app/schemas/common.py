"""Shared pieces: request and response bases, the error body, and the documented errors."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RequestModel(BaseModel):
    """A request body: unknown fields are a 422, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    """A response body built from a domain entity's attributes."""

    model_config = ConfigDict(from_attributes=True)


def omittable(**options: Any) -> Any:
    """A PATCH field that may be left out but, when sent, may not be null (the schema shows
    no `default: null`: `openapi.py` drops defaults a schema does not allow)."""
    return Field(default=None, **options)


class ErrorDetail(BaseModel):
    loc: list[str]
    message: str


class ErrorBody(BaseModel):
    """Every error response: a stable `error` code, a message, and the field when known.

    Request validation errors list up to 20 problems in `errors`. No message repeats what the
    client sent: fields are named only when they are plain identifiers.
    """

    error: str = Field(examples=["validation"])
    message: str = Field(examples=["must not be blank"])
    field: str | None = Field(default=None, examples=["title"])
    errors: list[ErrorDetail] | None = None


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
_CHALLENGE = {
    "WWW-Authenticate": {"description": "The Bearer challenge", "schema": {"type": "string"}}
}
_DESCRIPTIONS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("A mail token or paging cursor that is not valid (any more)", {}),
    401: ("Missing, invalid or expired credentials", _CHALLENGE),
    403: ("The caller may not do this", {}),
    404: ("Not found in the caller's organization", {}),
    409: ("Already exists, changed concurrently, or not allowed in this state", {}),
    412: ("If-Match does not match the current version", {}),
    413: ("The request body is too large", {}),
    415: ("The request body is not application/json", {}),
    422: ("Invalid input; `field` names it", {}),
    423: ("Locked after too many failed sign-ins; retry after `Retry-After` seconds", _RETRY_AFTER),
    503: ("A backing service is unavailable or failed transiently; retry later", _RETRY_AFTER),
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route: every status it can return besides success.

    422 (bad parameters) and 503 are possible everywhere and always included.
    """
    documented: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 422, 503}):
        description, headers = _DESCRIPTIONS[status]
        entry: dict[str, Any] = {"model": ErrorBody, "description": description}
        if headers:
            entry["headers"] = headers
        documented[status] = entry
    return documented


#: Statuses every route that reads a JSON body can add.
BODY = (413, 415)
#: Statuses every route behind the session token can add: 403 too, since every use case checks
#: its actor again (an account suspended after its token was resolved acts no more).
SIGNED_IN = (401, 403)

_ETAG = {"ETag": {"description": "The version; send it as If-Match", "schema": {"type": "string"}}}
_LOCATION = {"Location": {"description": "Where the new resource is", "schema": {"type": "string"}}}


def tagged(status: int = 200) -> dict[int | str, dict[str, Any]]:
    """A success answer that carries the entity's ETag."""
    return {status: {"description": "Success", "headers": _ETAG}}


def created(*, etag: bool = True) -> dict[int | str, dict[str, Any]]:
    """A 201 with the new resource's Location (and ETag)."""
    headers = {**_LOCATION, **(_ETAG if etag else {})}
    return {201: {"description": "Created", "headers": headers}}
