"""The verification and reset mails: subject, plain text and HTML, from replaceable templates.

Templates are `string.Template` texts (`$name`), one file per part: `<kind>.subject.txt`,
`<kind>.txt`, `<kind>.html`, kind being `email_verification` or `password_reset`. The
defaults ship in this package's `templates/` folder; `MailTemplates.from_directory(path)`
(or `EDU_MAIL_TEMPLATE_DIR`) takes any of them from your folder instead, file by file, and
renders each once with sample values, so a bad placeholder fails at start-up.

Variables: `$email`, `$link` (the URL the user follows), `$token` (the code, for forms that
ask for it), `$expires_at` (UTC, e.g. `2026-01-03 09:00 UTC`), `$organization_id`. In HTML
every value is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from string import Template
from urllib.parse import quote
from uuid import UUID

from attrs import frozen

from edu_domain.ports import Mail, MailKind

_PARTS = ("subject.txt", "txt", "html")


@frozen
class RenderedMail:
    subject: str
    text: str
    html: str


@frozen
class LinkTemplates:
    """Where each mail's link points; `{token}`, `{organization_id}` and `{user_id}` are
    filled in (URL-quoted), e.g. `https://app.example.org/verify?org={organization_id}&token={token}`.
    """

    verification: str
    reset: str

    def __attrs_post_init__(self) -> None:
        for name, template in (("verification", self.verification), ("reset", self.reset)):
            check_link_template(name, template)

    def link(self, mail: Mail) -> str:
        template = self.verification if mail.kind is MailKind.EMAIL_VERIFICATION else self.reset
        return template.format(
            token=quote(mail.token, safe=""),
            organization_id=mail.organization_id,
            user_id=mail.user_id,
        )


def check_link_template(name: str, template: str) -> None:
    """ValueError unless the template names `{token}` and formats with values of the types
    `link` passes (a str token, UUID ids), so what fails here is what would fail at send
    time (`{organization_id.hex}` works; `{token.nope}` or `{user_id:d}` do not)."""
    if "{token}" not in template:
        raise ValueError(f"the {name} link must contain {{token}}")
    try:
        template.format(token="t", organization_id=UUID(int=1), user_id=UUID(int=2))  # noqa: S106
    except Exception as error:  # any failure of format() is a bad template
        raise ValueError(
            f"the {name} link may use only {{token}}, {{organization_id}}, {{user_id}}:"
            f" {type(error).__name__}: {error}"
        ) from None


@frozen
class MailTemplates:
    """Templates keyed by `(kind, part)`; build with `default()` or `from_directory()`."""

    texts: Mapping[tuple[MailKind, str], str]

    @classmethod
    def default(cls) -> MailTemplates:
        folder = resources.files("edu_infra.mail") / "templates"
        return cls(
            {
                (kind, part): (folder / f"{kind.value}.{part}").read_text("utf-8")
                for kind in MailKind
                for part in _PARTS
            }
        )

    @classmethod
    def from_directory(cls, path: str | Path) -> MailTemplates:
        """The defaults, with every file found in `path` taking the place of its default."""
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"mail template folder {folder} does not exist")
        texts = dict(cls.default().texts)
        for kind, part in texts:
            own = folder / f"{kind.value}.{part}"
            if own.is_file():
                try:
                    texts[kind, part] = own.read_text("utf-8")
                except (OSError, UnicodeDecodeError) as error:
                    raise ValueError(f"mail template {own} cannot be read: {error}") from None
        templates = cls(texts)
        templates.check()
        return templates

    def check(self) -> None:
        """Render every template once with sample values: a bad `$placeholder` is a
        ValueError at start-up, not after the commit of the first registration."""
        for kind in MailKind:
            sample = Mail(
                kind=kind,
                organization_id=UUID(int=1),
                user_id=UUID(int=2),
                email="sample@example.org",
                token="sample-token",  # noqa: S106
                expires_at=datetime(2030, 1, 1, tzinfo=UTC),
            )
            self.render(sample, "https://example.org/sample")

    def render(self, mail: Mail, link: str) -> RenderedMail:
        values = {
            "email": mail.email,
            "link": link,
            "token": mail.token,
            "expires_at": mail.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "organization_id": str(mail.organization_id),
        }
        escaped = {name: html.escape(value, quote=True) for name, value in values.items()}
        return RenderedMail(
            subject=self._fill(mail.kind, "subject.txt", values).strip(),
            text=self._fill(mail.kind, "txt", values),
            html=self._fill(mail.kind, "html", escaped),
        )

    def _fill(self, kind: MailKind, part: str, values: Mapping[str, str]) -> str:
        try:
            return Template(self.texts[kind, part]).substitute(values)
        except (KeyError, ValueError) as error:
            raise ValueError(
                f"mail template {kind.value}.{part}: bad placeholder {error}"
            ) from None
