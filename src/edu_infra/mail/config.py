"""SMTP settings (`EDU_SMTP_*`): plain values, importable without the `smtp` extra."""

from __future__ import annotations

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

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


__all__ = ["SmtpSecurity", "SmtpSettings"]
