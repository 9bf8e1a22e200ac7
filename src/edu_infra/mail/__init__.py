"""Sending the verification and password-reset mails.

`SmtpNotifier` (needs the `smtp` extra: aiosmtplib) sends them over SMTP from
`MailTemplates`; the container picks it when `EDU_SMTP_HOST` is set. Without it the
`LoggingNotifier` (`edu_infra.notifier`) only logs that a mail would go out.
"""

from edu_infra.mail.templates import LinkTemplates, MailTemplates, RenderedMail

__all__ = ["LinkTemplates", "MailTemplates", "RenderedMail"]
