"""Test doubles for the small ports: a clock you move by hand, a fast hasher, recorders.

Public: users import these in their own tests together with the in-memory unit of work.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from attrs import define, field

from edu_domain.model.base import DomainEvent
from edu_domain.ports import Envelope


class ManualClock:
    """A clock that only moves when told to; starts at a fixed, timezone-aware instant."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


class SequentialIds:
    """Deterministic, increasing UUIDv7-shaped ids (handy for reproducible examples)."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def new_id(self) -> UUID:
        n = next(self._counter)
        return UUID(int=(0x0190_0000_0000 << 80) | (0x7 << 76) | (0b10 << 62) | n)


class SequentialTokens:
    """Predictable secrets: never use outside tests."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new_secret(self) -> str:
        return f"test-secret-{next(self._counter):08d}-" + "x" * 24


class FastHasher:
    """A quick, deterministic salted-SHA-256 hasher for tests (NOT for production).

    Hashes look like `fast$<scheme>$<salt>$<hex>`; any other scheme counts as outdated, so
    tests can exercise rehash-on-login by hashing with `scheme="old"`.
    """

    def __init__(self, scheme: str = "v2") -> None:
        self.scheme = scheme
        self._salts = itertools.count(1)

    def hash(self, password: str) -> str:
        salt = f"{next(self._salts):x}"
        return f"fast${self.scheme}${salt}${self._digest(salt, password)}"

    def verify(self, password: str, hashed: str) -> bool:
        parts = hashed.split("$")
        if len(parts) != 4 or parts[0] != "fast":
            return False
        return hmac.compare_digest(parts[3], self._digest(parts[2], password))

    def needs_rehash(self, hashed: str) -> bool:
        return not hashed.startswith(f"fast${self.scheme}$")

    @staticmethod
    def _digest(salt: str, password: str) -> str:
        data = (salt + "\x00" + password).encode("utf-8", "surrogatepass")
        return hashlib.sha256(data).hexdigest()


@define
class SentMail:
    kind: str
    email: str
    token: str = field(repr=False)
    expires_at: datetime


@define
class RecordingNotifier:
    """Keeps the mails it was asked to send, for assertions."""

    sent: list[SentMail] = field(factory=list)

    async def send_email_verification(self, email: str, token: str, expires_at: datetime) -> None:
        self.sent.append(SentMail("verify", email, token, expires_at))

    async def send_password_reset(self, email: str, token: str, expires_at: datetime) -> None:
        self.sent.append(SentMail("reset", email, token, expires_at))

    def last(self, kind: str, email: str | None = None) -> SentMail:
        for mail in reversed(self.sent):
            if mail.kind == kind and (email is None or mail.email == email):
                return mail
        raise LookupError(f"no {kind} mail" + (f" to {email}" if email else ""))


@define
class RecordingPublisher:
    """Keeps the events published after each commit (and, for those the outbox relay
    delivered, their envelopes: idempotency key and attempt)."""

    events: list[DomainEvent] = field(factory=list)
    envelopes: list[Envelope] = field(factory=list)
    #: raised after recording, to test that a failing publisher is only logged
    failure: Exception | None = None

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        self.events.extend(events)
        if self.failure is not None:
            raise self.failure

    async def deliver(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)
        await self.publish([envelope.event])

    def of_type(self, kind: type[DomainEvent]) -> list[DomainEvent]:
        return [e for e in self.events if isinstance(e, kind)]
