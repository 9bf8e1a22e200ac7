"""After-commit reactions to domain events: the mails, then any subscribers."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from edu_domain.errors import DomainError
from edu_domain.model.base import DomainEvent
from edu_domain.model.events import EmailVerificationRequested, PasswordResetRequested
from edu_domain.ports import EventPublisher, Mail, MailKind, MailSender, Notifier

log = logging.getLogger("edu_domain.events")


class EventDispatcher:
    """An EventPublisher that sends the mails events ask for and forwards every event.

    A failing subscriber is logged and skipped: the commit it reports already happened.
    """

    def __init__(self, notifier: Notifier, subscribers: Sequence[EventPublisher] = ()) -> None:
        self._notifier = notifier
        self._subscribers = list(subscribers)

    def subscribe(self, subscriber: EventPublisher) -> None:
        self._subscribers.append(subscriber)

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

    async def _mail(self, event: DomainEvent) -> None:
        if not isinstance(event, EmailVerificationRequested | PasswordResetRequested):
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
                )
            )
        elif isinstance(event, EmailVerificationRequested):
            await self._notifier.send_email_verification(event.email, event.token, event.expires_at)
        else:
            await self._notifier.send_password_reset(event.email, event.token, event.expires_at)
