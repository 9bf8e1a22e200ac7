"""Checks on every request before a route runs: body size, declared query parameters, HEAD
served as GET, and the methods a path allows (for 405 answers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from examples.fastapi_app.http_utils import BodyTooLarge, UnknownQueryParameters


class BodyLimit:
    """Refuses bodies over `max_bytes` with the JSON error body: at once when Content-Length
    says so, else as soon as the streamed body passes the limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, too_large: Callable[[], Any]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self.too_large()(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        await self.app(scope, counted, send)


class HeadAsGet:
    """HEAD is GET without the body (RFC 9110 9.3.2; every server must support it): FastAPI
    routes serve GET only, so a HEAD runs as a GET and keeps its status and headers, the
    Content-Length included, while the body chunks are sent empty."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headless(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headless)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


_declared: dict[int, frozenset[str]] = {}


def _query_names(route: APIRoute) -> frozenset[str]:
    names = _declared.get(id(route))
    if names is None:
        names = _declared[id(route)] = frozenset(_collect(route.dependant))
    return names


def _collect(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _collect(sub)
    return names


async def reject_unknown_query_parameters(request: Request) -> None:
    """An app-wide dependency: a query parameter the route does not declare is a 422."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _query_names(route))
    if unknown:
        raise UnknownQueryParameters(unknown)


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at this path (HEAD where GET is), for `Allow`.

    Starlette names only the methods of the first route whose path matches; a path served by
    several routes (GET and POST /content) needs them all. Each method is asked of every route
    (included routers answer for their own routes); a mount (the docs' static files) serves
    GET. A mount has re-rooted the scope its app answers from, so the path is matched again
    from the application's root.
    """
    scope = {**scope, "root_path": scope.get("app_root_path", scope.get("root_path", ""))}
    methods: set[str] = set()
    for route in app.router.routes:
        if isinstance(route, Mount):
            if route.matches(scope)[0] is not Match.NONE:
                methods.add("GET")
            continue
        methods.update(
            m for m in _METHODS if route.matches({**scope, "method": m})[0] is Match.FULL
        )
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
