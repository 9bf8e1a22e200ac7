"""The SMTP notifier end to end, against a real SMTP server started here (aiosmtpd).

A user registers through the container configured only by `EDU_SMTP_*` settings, the
verification mail arrives (plain text + HTML), and the link's token completes the
verification; the same for a password reset. A server that is down is retried, then a
one-line domain error; a server back within the retries gets the mail.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from edu_domain import UnavailableError
from edu_domain.model import UserStatus
from edu_domain.ports import Mail, MailKind
from edu_domain.services import EduCore, NewUser, Scope
from edu_infra.container import build_container, shutdown
from edu_infra.mail import LinkTemplates, MailTemplates
from edu_infra.mail.config import SmtpSecurity, SmtpSettings
from edu_infra.mail.smtp import SmtpNotifier
from edu_infra.settings import ConfigurationError, Settings
from tests.mail_server import PASSWORD, MailServer, free_port, parts, temp_folder, token_from_link

# implicit TLS: aiosmtpd counts only STARTTLS as TLS, so it warns about AUTH without TLS
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
PW = "correct horse battery"
LINKS = LinkTemplates(
    "https://app.example.org/v?token={token}", "https://app.example.org/r?t={token}"
)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    path = temp_folder()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["starttls", "tls"])
def server(request: pytest.FixtureRequest, folder: Path) -> Iterator[MailServer]:
    running = MailServer(folder, implicit_tls=request.param == "tls").start()
    yield running
    running.stop()


async def _core(settings: dict[str, str]) -> AsyncIterator[EduCore]:
    container = build_container(
        {"EDU_DATABASE_URL": "memory://", "EDU_ARGON2_MEMORY_KIB": "1024", **settings}
    )
    try:
        yield container.core()
    finally:
        await shutdown(container)


async def test_a_registered_user_verifies_with_the_mailed_link(server: MailServer) -> None:
    async for core in _core(server.settings()):
        org = await core.organizations.create("Mail School")
        account = await core.users.register(
            Scope.system(org.id), NewUser(email="ada@example.org", username="ada", password=PW)
        )
        mail = server.mailbox.last()
        assert mail["To"] == "ada@example.org"
        assert mail["From"] == "School <no-reply@school.example.org>"
        assert mail["Subject"] == "Confirm your email address"
        text, html = parts(mail)
        assert f"org={org.id}" in text and "ada@example.org" in html
        token = token_from_link(text)
        assert f'href="https://app.example.org/verify?org={org.id}&amp;token=' in html

        user = await core.verification.verify_email(Scope.system(org.id), token)
        assert user.id == account.user.id and user.email_verified
        assert user.status is UserStatus.ACTIVE
        assert (await core.auth.authenticate(Scope.system(org.id), "ada", PW)).token


async def test_a_password_reset_completes_with_the_mailed_token(server: MailServer) -> None:
    async for core in _core(server.settings()):
        org = await core.organizations.create("Reset School")
        scope = Scope.system(org.id)
        await core.users.register(
            scope,
            NewUser(email="bob@example.org", username="bob", password=PW),
            send_verification=False,
        )
        await core.verification.mark_verified(
            scope, (await core.users.get_by_email(scope, "bob@example.org")).id
        )
        await core.auth.request_password_reset(scope, "bob@example.org")
        mail = server.mailbox.last()
        assert mail["Subject"] == "Reset your password"
        await core.auth.reset_password(
            scope, token_from_link(parts(mail)[0]), "a brand new password"
        )
        assert (await core.auth.authenticate(scope, "bob", "a brand new password")).token


def _mail(kind: MailKind = MailKind.EMAIL_VERIFICATION) -> Mail:
    return Mail(
        kind=kind,
        organization_id=uuid4(),
        user_id=uuid4(),
        email="cy@example.org",
        token="id.secret-token",
        expires_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _smtp(port: int, **options: object) -> SmtpSettings:
    defaults: dict[str, object] = {
        "security": SmtpSecurity.NONE,
        "attempts": 3,
        "retry_pause": 0.05,
        "timeout": 2.0,
    }
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        sender="no-reply@example.org",
        **{**defaults, **options},  # type: ignore[arg-type]
    )


async def test_a_server_that_is_down_is_retried_then_a_one_line_domain_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there
    notifier = SmtpNotifier(_smtp(port), LINKS)
    with (
        caplog.at_level(logging.WARNING, "edu_infra.mail"),
        pytest.raises(UnavailableError) as raised,
    ):
        await notifier.send_mail(_mail())
    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message and "attempt 3 of 3" in message
    assert "\n" not in message and "secret-token" not in message
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 2


async def test_a_server_back_within_the_retries_gets_the_mail(folder: Path) -> None:
    port = free_port()
    late = MailServer(folder, port=port)
    notifier = SmtpNotifier(
        _smtp(port, security=SmtpSecurity.STARTTLS, ca_file=str(late.cert), user="mailer",
              password=PASSWORD, attempts=6, retry_pause=0.1),
        LINKS,
    )  # fmt: skip

    async def start_later() -> None:
        await asyncio.sleep(0.3)
        late.start()

    starter = asyncio.create_task(start_later())
    try:
        await notifier.send_mail(_mail(MailKind.PASSWORD_RESET))
        await starter
        assert late.mailbox.last()["Subject"] == "Reset your password"
    finally:
        late.stop()


async def test_a_refused_login_says_which_settings_to_check(server: MailServer) -> None:
    settings = Settings.from_mapping(
        {"EDU_DATABASE_URL": "memory://", **server.settings(EDU_SMTP_PASSWORD="wrong")}
    )
    assert settings.smtp is not None and settings.mail_links is not None
    notifier = SmtpNotifier(settings.smtp, settings.mail_links)
    with pytest.raises(UnavailableError, match="EDU_SMTP_USER and EDU_SMTP_PASSWORD"):
        await notifier.send_mail(_mail())
    assert not server.mailbox.messages


async def test_registration_survives_a_mail_server_that_is_down(
    caplog: pytest.LogCaptureFixture, server: MailServer
) -> None:
    settings = server.settings(EDU_SMTP_PORT=str(free_port()), EDU_SMTP_ATTEMPTS="1")
    async for core in _core(settings):
        org = await core.organizations.create("Offline Mail School")
        with caplog.at_level(logging.ERROR):
            account = await core.users.register(
                Scope.system(org.id),
                NewUser(email="dina@example.org", username="dina", password=PW),
            )
        assert not account.user.email_verified
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and errors[0].exc_info is None
        assert "could not take the email_verification mail" in errors[0].getMessage()


def test_smtp_settings_are_checked_and_the_password_is_redacted(folder: Path) -> None:
    base = {"EDU_DATABASE_URL": "memory://", "EDU_SMTP_HOST": "mail.example.org"}
    with pytest.raises(ConfigurationError, match="EDU_MAIL_VERIFY_URL"):
        Settings.from_mapping(base)
    links = {
        "EDU_MAIL_VERIFY_URL": "https://a/v?t={token}",
        "EDU_MAIL_RESET_URL": "https://a/r/{token}",
    }
    with pytest.raises(ConfigurationError, match="EDU_SMTP_SENDER"):
        Settings.from_mapping({**base, **links})
    with pytest.raises(ConfigurationError, match="must contain"):
        Settings.from_mapping({**base, **links, "EDU_MAIL_RESET_URL": "https://a/r"})
    with pytest.raises(ConfigurationError, match="EDU_SMTP_SECURITY"):
        Settings.from_mapping({**base, **links, "EDU_SMTP_SECURITY": "ssl3"})
    settings = Settings.from_mapping(
        {**base, **links, "EDU_SMTP_SENDER": "a@b.org", "EDU_SMTP_PASSWORD": "hunter2-secret"}
    )
    assert "hunter2-secret" not in repr(settings)
    assert settings.smtp is not None and settings.smtp.port == 587
    assert settings.smtp.security is SmtpSecurity.STARTTLS


def test_templates_are_replaceable_file_by_file_and_html_is_escaped(folder: Path) -> None:
    own = folder / "own-templates"
    own.mkdir(exist_ok=True)
    (own / "email_verification.subject.txt").write_text("Welcome to $organization_id\n")
    (own / "email_verification.html").write_text("<p>code: $token</p>")
    templates = MailTemplates.from_directory(own)
    mail = _mail()
    rendered = templates.render(mail, "https://x/?a=1&b=<2>")
    assert rendered.subject == f"Welcome to {mail.organization_id}"
    assert rendered.html == "<p>code: id.secret-token</p>"
    assert "https://x/?a=1&b=<2>" in rendered.text  # the default text part stayed
    default = MailTemplates.default().render(mail, "https://x/?a=1&b=<2>")
    assert 'href="https://x/?a=1&amp;b=&lt;2&gt;"' in default.html
    with pytest.raises(ValueError, match="does not exist"):
        MailTemplates.from_directory(folder / "missing")
