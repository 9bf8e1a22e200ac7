"""Read-your-writes across read replicas: the consistency token, and where a call chain keeps it.

A token is the WAL position of a commit (a PostgreSQL LSN, written like `16/B374D848`). A
read-only unit of work given a token is served by a replica only once that replica has
replayed at least that far, else by the primary; so no read is older than a token it was
given. Tokens carry no authority: a forged one can only make its own reads wait (at most
the configured bound) and go to the primary.

Within one call chain (a request, a job) this happens by itself: every commit records its
token in the chain, every read-only unit of work reads it. The chain lives in a context
variable. A `read_your_writes()` scope is one chain shared by every task started inside it
(one request). Without a scope, each asyncio task keeps a chain of its own, starting from
the one it inherited: a task sees its own and its parent's earlier commits, never those of
a sibling, so concurrent requests never see each other's tokens.
Across requests the host carries the token (the example service: a response header that the
next request sends back):

    with read_your_writes(request.headers.get("Edu-Consistency")) as chain:
        ...  # use cases
    response.headers["Edu-Consistency"] = str(chain.token)
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from attrs import frozen

from edu_domain.errors import ValidationError

T = TypeVar("T")
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
#: PostgreSQL's WAL page size and page header sizes (short; long at a segment's start): no
#: record ends inside a header.
_PAGE, _PAGE_HEADERS = 8192, (24, 40)


@frozen(order=True)
class ConsistencyToken:
    """A WAL position: reads given it see every commit at or before it."""

    position: int

    @classmethod
    def parse(cls, text: object) -> ConsistencyToken:
        """The token of its text form (`X/Y`, hexadecimal); anything else is a ValidationError."""
        match = _LSN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValidationError("consistency_token", "must be a WAL position such as 0/16B3748")
        return cls((int(match[1], 16) << 32) | int(match[2], 16))

    @classmethod
    def coerce(cls, value: ConsistencyToken | str | None) -> ConsistencyToken | None:
        if value is None or isinstance(value, ConsistencyToken):
            return value
        return cls.parse(value)

    def at_record_end(self) -> ConsistencyToken:
        """The same point as an end of WAL records: a position just past a page header
        (24 bytes, 40 at a segment's start; 8 kB pages) is the page's start, which is
        where a standby's replay reports the last record before it to end."""
        offset = self.position % _PAGE
        return ConsistencyToken(self.position - offset) if offset in _PAGE_HEADERS else self

    def __str__(self) -> str:
        return f"{self.position >> 32:X}/{self.position & 0xFFFFFFFF:X}"


class ReadYourWrites:
    """The newest token of one call chain (shared by reference with the tasks it starts)."""

    def __init__(
        self, token: ConsistencyToken | None = None, *, owner: asyncio.Task[Any] | None = None
    ) -> None:
        self.token = token
        #: a commit whose position could not be read: this chain reads from the primary
        self.primary_only = False
        #: the task a chain started without a scope belongs to (None: a scope's chain)
        self._owner = None if owner is None else weakref.ref(owner)

    def owned_by(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether `task` may advance this chain: a scope's chain, or the task's own."""
        return self._owner is None or self._owner() is task

    def advance(self, token: ConsistencyToken | None) -> None:
        if token is not None and (self.token is None or token > self.token):
            self.token = token

    def __repr__(self) -> str:
        return f"ReadYourWrites(token={self.token}, primary_only={self.primary_only})"


_CHAIN: ContextVar[ReadYourWrites | None] = ContextVar("edu_read_your_writes", default=None)
_PRIMARY: ContextVar[bool] = ContextVar("edu_primary_reads", default=False)


@contextmanager
def read_your_writes(token: ConsistencyToken | str | None = None) -> Iterator[ReadYourWrites]:
    """One call chain (e.g. a request) starting from `token` (a ValidationError if malformed).

    Commits inside advance the chain; read-only units of work inside read no older than it.
    """
    chain = ReadYourWrites(ConsistencyToken.coerce(token))
    reset = _CHAIN.set(chain)
    try:
        yield chain
    finally:
        _CHAIN.reset(reset)


def current_chain() -> ReadYourWrites | None:
    return _CHAIN.get()


def committed(token: ConsistencyToken | None) -> None:
    """Record a commit in the current chain. Outside a scope the task advances a chain of its
    own (started from the one it inherited), so sibling tasks never share tokens."""
    chain = _CHAIN.get()
    task = asyncio.current_task()
    if chain is None or not chain.owned_by(task):
        inherited = chain
        chain = ReadYourWrites(inherited.token if inherited else None, owner=task)
        chain.primary_only = inherited is not None and inherited.primary_only
        _CHAIN.set(chain)
    if token is None:
        chain.primary_only = True
    else:
        chain.advance(token)


@contextmanager
def primary_reads() -> Iterator[None]:
    """Read-only units of work opened inside read from the primary (e.g. to fill a shared
    cache: a replica's older row must not outlive the invalidation that followed a commit)."""
    reset = _PRIMARY.set(True)
    try:
        yield
    finally:
        _PRIMARY.reset(reset)


def primary_required() -> bool:
    chain = _CHAIN.get()
    return _PRIMARY.get() or (chain is not None and chain.primary_only)


class PrimaryLoads:
    """A read cache whose loads read the primary (`primary_reads`), for a deployment with read
    replicas: what a load puts in a cache shared by every instance outlives the read, so it
    must not be older than the invalidation that followed the last commit."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def fetch(
        self, key: Any, load: Callable[[], Awaitable[T]], type_: Any, **options: Any
    ) -> T:
        async def from_primary() -> T:
            with primary_reads():
                return await load()

        result: T = await self.inner.fetch(key, from_primary, type_, **options)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


__all__ = [
    "ConsistencyToken",
    "PrimaryLoads",
    "ReadYourWrites",
    "committed",
    "current_chain",
    "primary_reads",
    "primary_required",
    "read_your_writes",
]
