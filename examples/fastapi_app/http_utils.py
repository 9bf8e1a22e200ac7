"""HTTP details the routes share: entity tags, If-Match and what the client tells us."""

from __future__ import annotations

import ipaddress

from fastapi import Request, Response

from edu_domain.model.base import Entity
from edu_domain.model.rules import USER_AGENT_MAX


class PreconditionFailed(Exception):
    """An If-Match header that cannot match any version of the entity (HTTP 412)."""


class MissingCredentials(Exception):
    """No `Authorization: Bearer` header at all (HTTP 401 without an error code)."""


class BadRequest(Exception):
    """Well-formed but unusable input, such as a cursor of another query (HTTP 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class UnknownQueryParameters(Exception):
    """Query parameters the route does not declare (HTTP 422): a typo never passes silently."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class BodyTooLarge(Exception):
    """The request body passed the configured limit while it was read (HTTP 413)."""


def etag(entity: Entity) -> str:
    """The strong entity tag of an entity: its optimistic-locking version."""
    return f'"{entity.version}"'


def set_etag(response: Response, entity: Entity) -> None:
    response.headers["ETag"] = etag(entity)


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match header asks for; None when absent or `*` (any version).

    A header that is not one of our entity tags can never match: 412.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/")
    if len(tag) < 3 or len(tag) > 22 or not (tag[0] == tag[-1] == '"'):
        raise PreconditionFailed
    digits = tag[1:-1]
    if not digits.isascii() or not digits.isdigit():
        raise PreconditionFailed
    return int(digits)


def client_ip(request: Request) -> str | None:
    """The peer address when it is an IP address (test transports may give a name)."""
    host = request.client.host if request.client else None
    if host is None:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def user_agent(request: Request) -> str | None:
    """The User-Agent without control characters: it is client noise, never a reason to fail."""
    raw = request.headers.get("user-agent")
    if raw is None:
        return None
    cleaned = "".join(ch for ch in raw[: USER_AGENT_MAX * 2] if ch.isprintable())
    return cleaned[:USER_AGENT_MAX] or None
