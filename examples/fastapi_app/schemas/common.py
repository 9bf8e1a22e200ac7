"""Shared pieces: the request base that refuses unknown fields, and the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body: unknown fields are a 422, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    """A response body built from a domain entity's attributes."""

    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    """Every error response: a stable `error` code, a message, and the field when known."""

    error: str
    message: str
    field: str | None = None


#: The error answers every route may give, documented in OpenAPI with the shared body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "Missing, invalid or expired session token"),
        (403, "The caller's role may not do this"),
        (404, "Not found in the caller's organization"),
        (409, "Already exists, changed concurrently, or not allowed in this state"),
        (422, "Invalid input; `field` names it"),
        (503, "A backing service is unavailable or a transient failure occurred"),
    )
}
