"""HTTP details the routes share: entity tags, If-Match and what the client tells us."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable

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


#: RFC 9110 8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text.
_ENTITY_TAG = r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"'
#: If-Match = "*" / #entity-tag: a comma-separated list, empty elements and blanks allowed.
_TAG_LIST = re.compile(
    rf"[ \t]*(?:,[ \t]*)*{_ENTITY_TAG}(?:[ \t]*,(?:[ \t]*{_ENTITY_TAG})?)*[ \t]*"
)
_VERSION_DIGITS = 19  # a version is a 64-bit integer


def if_match_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an If-Match header accepts; None when absent or `*` (any version).

    Only strong tags that spell a version count: If-Match uses the strong comparison
    (RFC 9110 13.1.1), so a weak tag never matches, nor does `"01"` match `"1"`. A malformed
    header accepts no version (412).
    """
    if if_match is None or if_match.strip(" \t") == "*":
        return None
    if not _TAG_LIST.fullmatch(if_match):
        return frozenset()
    return frozenset(
        int(opaque)
        for weak, opaque in re.findall(_ENTITY_TAG, if_match)
        if not weak
        and opaque.isascii()
        and opaque.isdigit()
        and len(opaque) <= _VERSION_DIGITS
        and str(int(opaque)) == opaque
    )


async def expected_version(
    if_match: str | None, current: Callable[[], Awaitable[Entity]]
) -> int | None:
    """The version a conditional write must find, for the domain's optimistic-lock check.

    One tag is passed on as is; for a list, `current()` reads the entity and the version it has
    is expected if the list holds it, so a write that races with another still gets a 412.
    """
    versions = if_match_versions(if_match)
    if versions is None:
        return None
    if len(versions) == 1:
        return next(iter(versions))
    version = (await current()).version if versions else None
    if version not in versions:
        raise PreconditionFailed
    return version


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
