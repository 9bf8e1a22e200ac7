"""A Notifier that sends the verification and reset mails over SMTP (aiosmtplib).

Chosen by the container when `EDU_SMTP_HOST` is set. Each mail is multipart/alternative
(plain text + HTML, from `MailTemplates`). Transient failures (server down, timeout, a 4xx
answer) are retried `attempts` times with a doubling pause; what still fails, and permanent
refusals (bad login, refused address), become `UnavailableError` / `ValidationError` with a
one-line reason. Mails go out after the commit that asked for them, so a failure never undoes
a registration: the outbox relay tries again later (the Message-ID is the outbox's
idempotency key, the same on every attempt), or, without the outbox, `EventDispatcher` logs
it and `core.verification.resend` sends a new token.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from edu_domain.errors import UnavailableError, ValidationError
from edu_domain.ports import Mail, MailKind
from edu_infra.mail.config import SmtpSecurity, SmtpSettings
from edu_infra.mail.templates import LinkTemplates, MailTemplates

log = logging.getLogger("edu_infra.mail")


class SmtpNotifier:
    """`Notifier` and `MailSender` over SMTP. Never logs a token."""

    def __init__(
        self,
        settings: SmtpSettings,
        links: LinkTemplates,
        templates: MailTemplates | None = None,
    ) -> None:
        self.settings = settings
        self.links = links
        self.templates = templates or MailTemplates.default()
        self._tls = _tls_context(settings)

    async def send_mail(self, mail: Mail) -> None:
        await self._deliver(self.message(mail), mail.kind)

    def message(self, mail: Mail) -> EmailMessage:
        """The multipart mail `send_mail` delivers."""
        rendered = self.templates.render(mail, self.links.link(mail))
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = mail.email
        message["Subject"] = rendered.subject
        message["Message-ID"] = message_id(mail, self.settings.sender_domain)
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message

    async def send_email_verification(self, email: str, token: str, expires_at: datetime) -> None:
        raise TypeError("SmtpNotifier needs the organization: EventDispatcher calls send_mail")

    async def send_password_reset(self, email: str, token: str, expires_at: datetime) -> None:
        raise TypeError("SmtpNotifier needs the organization: EventDispatcher calls send_mail")

    async def _deliver(self, message: EmailMessage, kind: MailKind) -> None:
        s = self.settings
        pause = s.retry_pause
        for attempt in range(1, s.attempts + 1):
            try:
                await aiosmtplib.send(
                    message,
                    hostname=s.host,
                    port=s.port,
                    username=s.user,
                    password=s.password,
                    use_tls=s.security is SmtpSecurity.TLS,
                    start_tls=s.security is SmtpSecurity.STARTTLS,
                    tls_context=self._tls,
                    timeout=s.timeout,
                )
            except aiosmtplib.SMTPAuthenticationError:
                raise UnavailableError(
                    f"mail server {s.address} refused the login: check EDU_SMTP_USER and"
                    " EDU_SMTP_PASSWORD"
                ) from None
            except aiosmtplib.SMTPRecipientsRefused:
                raise ValidationError("email", "the mail server refused the address") from None
            except (aiosmtplib.SMTPException, OSError) as error:
                reason = _reason(error)
                if not _transient(error) or attempt == s.attempts:
                    raise UnavailableError(
                        f"mail server {s.address} could not take the {kind.value} mail"
                        f" (attempt {attempt} of {s.attempts}): {reason}"
                    ) from None
                log.warning("mail server %s: %s; retrying in %.1f s", s.address, reason, pause)
                await asyncio.sleep(pause)
                pause *= 2
            else:
                log.info("%s mail handed to %s", kind.value, s.address)
                return


def message_id(mail: Mail, domain: str) -> str:
    """The outbox's idempotency key when the mail has one: every attempt to send one mail
    carries the same Message-ID, so a mail sent twice is recognisably one mail."""
    if mail.idempotency_key is not None and _KEY.fullmatch(mail.idempotency_key):
        return f"<{mail.idempotency_key}@{domain}>"
    return make_msgid(domain=domain)


_KEY = re.compile(r"[0-9A-Za-z._-]{1,128}")


def _transient(error: Exception) -> bool:
    """Worth another try: no connection, a lost one, a timeout, or a 4xx (try later) answer.
    A missing feature (no STARTTLS, no AUTH) or a 5xx answer will not change by retrying."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return 400 <= error.code < 500
    return isinstance(error, OSError)


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if settings.security is SmtpSecurity.NONE:
        return None
    return ssl.create_default_context(cafile=settings.ca_file)


__all__ = ["SmtpNotifier", "SmtpSecurity", "SmtpSettings"]
