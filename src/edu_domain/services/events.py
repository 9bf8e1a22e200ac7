"""After-commit reactions to domain events: the mails, then any subscribers."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from edu_domain.errors import DomainError
from edu_domain.model.base import DomainEvent
from edu_domain.model.events import EmailVerificationRequested, PasswordResetRequested
from edu_domain.ports import (
    Envelope,
    EnvelopePublisher,
    EventPublisher,
    Mail,
    MailKind,
    MailSender,
    Notifier,
)

log = logging.getLogger("edu_domain.events")
_MAILED = (EmailVerificationRequested, PasswordResetRequested)


class EventDispatcher:
    """An EventPublisher that sends the mails events ask for and forwards every event.

    Through the outbox (`deliver`) a failure is raised, so the relay tries again later.
    Published directly (`publish`), a failing subscriber is logged and skipped: the commit
    it reports already happened.
    """

    def __init__(self, notifier: Notifier, subscribers: Sequence[EventPublisher] = ()) -> None:
        self._notifier = notifier
        self._subscribers = list(subscribers)

    def subscribe(self, subscriber: EventPublisher) -> None:
        self._subscribers.append(subscriber)

    def durable(self, event: DomainEvent) -> bool:
        """Whether `event` must reach its consumers at least once (it goes through the
        outbox): a mail always; every event once somebody subscribed."""
        return isinstance(event, _MAILED) or bool(self._subscribers)

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            try:
                await self._mail(event)
            except DomainError as error:  # the adapter already said what went wrong
                log.error("sending the mail for %s failed: %s", type(event).__name__, error)
            except Exception:
                log.exception("sending the mail for %s failed", type(event).__name__)
        for subscriber in self._subscribers:
            try:
                await subscriber.publish(events)
            except Exception:
                log.exception("event subscriber %r failed", subscriber)

    async def deliver(self, envelope: Envelope) -> None:
        """The mail (carrying the idempotency key), then every subscriber; every one is
        tried, and the first failure is raised."""
        failure: Exception | None = None
        try:
            await self._mail(envelope.event, str(envelope.key))
        except Exception as error:
            failure = error
        for subscriber in self._subscribers:
            try:
                if isinstance(subscriber, EnvelopePublisher):
                    await subscriber.deliver(envelope)
                else:
                    await subscriber.publish([envelope.event])
            except Exception as error:
                failure = failure or error
        if failure is not None:
            raise failure

    async def _mail(self, event: DomainEvent, key: str | None = None) -> None:
        if not isinstance(event, _MAILED):
            return
        if isinstance(self._notifier, MailSender):
            kind = (
                MailKind.EMAIL_VERIFICATION
                if isinstance(event, EmailVerificationRequested)
                else MailKind.PASSWORD_RESET
            )
            await self._notifier.send_mail(
                Mail(
                    kind=kind,
                    organization_id=event.organization_id,
                    user_id=event.user_id,
                    email=event.email,
                    token=event.token,
                    expires_at=event.expires_at,
                    idempotency_key=key,
                )
            )
        elif isinstance(event, EmailVerificationRequested):
            await self._notifier.send_email_verification(event.email, event.token, event.expires_at)
        else:
            await self._notifier.send_password_reset(event.email, event.token, event.expires_at)
