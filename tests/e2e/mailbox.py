"""The customer's side of the mail: sending to Postdesk over SMTP, reading what the sink caught."""
from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage

from tests.support.sink import SmtpSink


def send_mail(smtp_port: int, *, sender: str, subject: str, body: str, msgid: str,
              to: str = "support@example.test", in_reply_to: str | None = None,
              references: str | None = None) -> None:
    """One plain-text mail from a customer's mail client to Postdesk's SMTP door."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = msgid
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = references or in_reply_to
    msg.set_content(body)
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=15) as smtp:
        smtp.send_message(msg)


def recipient(mail: EmailMessage) -> str:
    return mail["To"].addresses[0].addr_spec.lower()


def text_of(mail: EmailMessage) -> str:
    """The plain-text body a mail client shows (the text part of a multipart/alternative)."""
    return mail.get_body(("plain",)).get_content()


def wait_for_mail(sink: SmtpSink, wanted: Callable[[EmailMessage], bool], what: str,
                  timeout: float = 20.0) -> EmailMessage:
    """The first mail at the sink that `wanted` accepts, waiting for it to be delivered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in sink.mails():
            if wanted(mail):
                return mail
        time.sleep(0.1)
    seen = [f"{m['Subject']!r} to {m['To']}" for m in sink.mails()]
    raise AssertionError(f"no {what} at the sink after {timeout}s; it has: {seen}")


def link_in(mail: EmailMessage, base_url: str, path: str) -> str:
    """The link to `base_url` + `path`… in the mail's text (there must be exactly one)."""
    text = text_of(mail)
    links = set(re.findall(re.escape(base_url + path) + r"[^\s<>\"')]+", text))
    assert len(links) == 1, f"expected one {path} link to {base_url} in the mail, found {links}:\n{text}"
    return links.pop()
