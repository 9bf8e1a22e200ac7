"""Outbox rows hold events as JSON: every domain event round-trips; bad rows are refused."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import attrs
import pytest

from edu_domain import ValidationError
from edu_domain.model import events
from edu_domain.model.base import DomainEvent
from edu_infra.outbox import (
    RelaySettings,
    Sealer,
    UndeliverableEvent,
    decode_event,
    encode_event,
)

SAMPLES: dict[type, object] = {
    UUID: uuid4(),
    str: "text",
    int: 3,
    bool: True,
    datetime: datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
}
EVENT_TYPES = [
    cls
    for cls in vars(events).values()
    if isinstance(cls, type) and issubclass(cls, DomainEvent) and cls is not DomainEvent
]


def _sample(cls: type[DomainEvent]) -> DomainEvent:
    hints = typing.get_type_hints(cls)
    return cls(**{a.name: SAMPLES[hints[a.name]] for a in attrs.fields(cls)})


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_every_domain_event_survives_the_outbox(cls: type[DomainEvent]) -> None:
    event = _sample(cls)
    kind, fields = encode_event(event)
    assert kind == cls.__name__
    assert decode_event(kind, fields, event.organization_id) == event  # type: ignore[attr-defined]


def test_a_naive_datetime_cannot_be_stored() -> None:
    event = events.UserLockedOut(
        organization_id=uuid4(), user_id=uuid4(), until=datetime(2026, 1, 1)
    )
    with pytest.raises(ValidationError, match="naive"):
        encode_event(event)


def test_an_unknown_kind_is_retried_later_and_a_malformed_row_is_given_up_at_once() -> None:
    org = uuid4()
    kind, fields = encode_event(events.EmailVerified(organization_id=org, user_id=uuid4()))
    with pytest.raises(UndeliverableEvent) as unknown:
        decode_event("EventOfANewerVersion", fields, org)
    assert not unknown.value.final
    for broken in (
        {**fields, "user_id": "not-a-uuid"},
        {**fields, "extra": 1},
        {"organization_id": str(org)},
        {**fields, "organization_id": str(uuid4())},
    ):
        with pytest.raises(UndeliverableEvent) as refused:
            decode_event(kind, broken, org)
        assert refused.value.final, broken


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap() -> None:
    settings = RelaySettings(backoff=2.0, backoff_max=60.0)
    for attempts, full in ((1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0), (200, 60.0)):
        delay = settings.retry_delay(attempts)
        assert timedelta(seconds=full / 2) <= delay <= timedelta(seconds=full)


def test_a_sealed_token_is_unreadable_and_opens_only_with_its_key_and_place() -> None:
    sealer = Sealer("k" * 40)
    sealed = sealer.seal("the-raw-token", "row-1")
    assert "the-raw-token" not in sealed and "k" * 8 not in repr(sealer)
    assert sealer.open(sealed, "row-1") == "the-raw-token"
    assert sealer.seal("the-raw-token", "row-1") != sealed  # a fresh nonce every time
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    for wrong, place in (
        (Sealer("x" * 40), "row-1"),  # another key
        (sealer, "row-2"),  # moved to another row
    ):
        with pytest.raises(ValueError, match="another"):
            wrong.open(sealed, place)
    for bad in (tampered, "s1:!!", "plain-token", 42):
        with pytest.raises(ValueError, match="sealed"):
            sealer.open(bad, "row-1")


def test_with_a_sealer_the_mail_token_is_stored_sealed_and_must_come_back_sealed() -> None:
    sealer, org = Sealer("k" * 40), uuid4()
    event = events.PasswordResetRequested(
        organization_id=org,
        user_id=uuid4(),
        email="a@example.org",
        token="raw-reset-token",
        expires_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    kind, fields = encode_event(event, sealer=sealer, place="key:org")
    assert fields["token"] != "raw-reset-token" and fields["email"] == "a@example.org"
    assert decode_event(kind, fields, org, sealer=sealer, place="key:org") == event
    for place, stored in (("other:org", fields), ("key:org", {**fields, "token": "forged"})):
        with pytest.raises(UndeliverableEvent, match="not sealed") as refused:
            decode_event(kind, stored, org, sealer=sealer, place=place)
        assert refused.value.final
