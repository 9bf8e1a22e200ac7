"""SMTP settings (`EDU_SMTP_*`): plain values, importable without the `smtp` extra."""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address
from email.policy import default as _policy
from enum import StrEnum

from attrs import field, frozen


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS (port 587): required
    TLS = "tls"  # TLS from the first byte (port 465)
    NONE = "none"  # no encryption: only for a relay on localhost or in tests


@frozen(kw_only=True)
class SmtpSettings:
    """How to reach the mail server (`EDU_SMTP_*`)."""

    host: str
    port: int = 587
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    user: str | None = None
    password: str | None = field(default=None, repr=lambda p: "None" if p is None else "'***'")
    sender: str
    timeout: float = 10.0
    attempts: int = 3
    retry_pause: float = 0.5
    ca_file: str | None = None

    def __attrs_post_init__(self) -> None:
        sender_address(self.sender)  # a sender no mail can carry fails at start-up

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sender_domain(self) -> str:
        """The sender's domain, e.g. for the Message-ID (`School <a@b.org>` gives `b.org`)."""
        return sender_address(self.sender).domain


def sender_address(sender: str) -> Address:
    """The address of `sender` (`a@b.org` or `Name <a@b.org>`); ValueError if it has none."""
    try:
        header = _policy.header_factory("From", sender)
        addresses = header.addresses
        defects = header.defects
    except (HeaderParseError, ValueError, IndexError):
        addresses, defects = (), ("unparsable",)
    address: Address | None = addresses[0] if len(addresses) == 1 and not defects else None
    if address is None or not address.username or not address.domain:
        raise ValueError(
            f"EDU_SMTP_SENDER must be an address (a@example.org or Name <a@example.org>),"
            f" not {sender!r}"
        )
    return address


__all__ = ["SmtpSecurity", "SmtpSettings", "sender_address"]
