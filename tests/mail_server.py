"""A real SMTP server for the tests (aiosmtpd): STARTTLS or implicit TLS, AUTH, a mailbox.

The certificate is self-signed for 127.0.0.1, made with the `openssl` command; clients trust
it through its PEM file (`EDU_SMTP_CA_FILE`).
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "mailer", "smtp-secret-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the SMTP tests need the openssl command to make a certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class Mailbox:
    """The aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.arrived.set()
        return "250 Message accepted for delivery"

    def last(self) -> EmailMessage:
        assert self.messages, "no mail arrived"
        return self.messages[-1]


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


class MailServer:
    """An SMTP server on 127.0.0.1 in its own thread: `implicit_tls` for port-465 style."""

    def __init__(self, folder: Path, *, implicit_tls: bool = False, port: int | None = None):
        self.cert, key = make_certificate(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.mailbox = Mailbox()
        self.port = port or free_port()
        self.security = "tls" if implicit_tls else "starttls"
        options: dict[str, Any] = {
            "authenticator": _authenticate,
            "auth_required": True,
        }
        if implicit_tls:  # aiosmtpd only counts STARTTLS as TLS for auth_require_tls
            options.update(ssl_context=context, auth_require_tls=False)
        else:
            options.update(tls_context=context, require_starttls=True)
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, **options)

    def start(self) -> MailServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def settings(self, **overrides: str) -> dict[str, str]:
        """The EDU_SMTP_* / EDU_MAIL_* settings that reach this server."""
        return {
            "EDU_SMTP_HOST": "127.0.0.1",
            "EDU_SMTP_PORT": str(self.port),
            "EDU_SMTP_SECURITY": self.security,
            "EDU_SMTP_USER": USER,
            "EDU_SMTP_PASSWORD": PASSWORD,
            "EDU_SMTP_SENDER": "School <no-reply@school.example.org>",
            "EDU_SMTP_CA_FILE": str(self.cert),
            "EDU_MAIL_VERIFY_URL": "https://app.example.org/verify?org={organization_id}&token={token}",
            "EDU_MAIL_RESET_URL": "https://app.example.org/reset?org={organization_id}&token={token}",
            **overrides,
        }


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML bodies of a multipart/alternative mail."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None, "expected text and HTML parts"
    return str(text.get_content()), str(html.get_content())


def token_from_link(text: str) -> str:
    """The token of the link in a mail (as a person would click it), URL-decoded."""
    from urllib.parse import parse_qs, urlsplit

    match = re.search(r"https://app\.example\.org/\S+", text)
    assert match, f"no link in the mail: {text!r}"
    return parse_qs(urlsplit(match.group(0)).query)["token"][0]


def temp_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="edu-smtp-"))
