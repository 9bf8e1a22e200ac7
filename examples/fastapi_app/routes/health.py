"""Liveness and readiness."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from examples.fastapi_app.schemas.common import errors

router = APIRouter(tags=["health"])
_BAD_QUERY: dict[int | str, dict[str, Any]] = {422: errors()[422]}


class LivenessOut(BaseModel):
    status: str


class ReadinessOut(BaseModel):
    """`checks` holds each adapter's health check that exists (true: it answered)."""

    status: str
    checks: dict[str, bool]


@router.get("/health", summary="Liveness: the process answers", responses=_BAD_QUERY)
async def health() -> LivenessOut:
    return LivenessOut(status="ok")


@router.get(
    "/health/ready",
    summary="Readiness: the core is started and its adapters answer",
    response_model=ReadinessOut,
    responses={
        200: {"model": ReadinessOut, "description": "Started, and every adapter answers"},
        503: {"model": ReadinessOut, "description": "Not started, or an adapter failed its check"},
        **_BAD_QUERY,
    },
)
async def ready(request: Request) -> JSONResponse:
    """Calls `health_check()` of the database and the cache when the adapters have one (the
    SQL and Redis ones do; the in-memory unit of work needs none)."""
    core = getattr(request.app.state, "core", None)
    if core is None:
        return JSONResponse({"status": "unavailable", "checks": {}}, status_code=503)
    checks = {
        "database": await _check(core.deps.uow),
        "cache": await _check(core.deps.reads),
    }
    reported = {name: ok for name, ok in checks.items() if ok is not None}
    healthy = all(reported.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": reported},
        status_code=200 if healthy else 503,
    )


_INNER = ("database", "cache")


async def _check(adapter: Any) -> bool | None:
    """True/False from the adapter's health check (or that of the database or cache it
    wraps, as the SQL unit-of-work factory and the read-through cache do); None if none."""
    probe = getattr(adapter, "health_check", None)
    for inner in _INNER:
        if callable(probe):
            break
        probe = getattr(getattr(adapter, inner, None), "health_check", None)
    if not callable(probe):
        return None
    try:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
    except Exception:
        return False
    return bool(result)
