"""Outgoing MIME. Every value that came from outside is scrubbed of line breaks, and the
finished message is parsed back to prove it has exactly the headers we set.

Python 3.11.7 lacks `policy.verify_generated_headers` (CVE-2024-6923), so the check is ours.
"""
from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from core.errors import HeaderInjection
from core.models import utcnow

_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def header_safe(value: str, limit: int = 900) -> str:
    """A single-line header value: CR, LF and every other control character become spaces."""
    return re.sub(r"\s{2,}", " ", _UNSAFE.sub(" ", value)).strip()[:limit]


@dataclass(frozen=True)
class OutgoingMail:
    from_address: str
    to: str
    subject: str
    text: str
    message_id: str
    from_name: str = "Support"
    to_name: str = ""
    html: str = ""
    reply_to: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = field(default=())


def _address(name: str, addr: str) -> Address:
    addr = header_safe(addr, 320)
    if "@" not in addr or any(c in addr for c in ' <>,;"'):
        raise HeaderInjection(f"not a single mail address: {addr!r}")
    local, _, domain = addr.rpartition("@")
    return Address(display_name=header_safe(name, 200), username=local, domain=domain)


def build_mail(out: OutgoingMail) -> bytes:
    """The mail as bytes ready for SMTP (CRLF line ends). Raises HeaderInjection if it would not be safe."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = _address(out.from_name, out.from_address)
    msg["To"] = _address(out.to_name, out.to)
    msg["Subject"] = header_safe(out.subject)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = f"<{header_safe(out.message_id, 990)}>"
    if out.reply_to:
        msg["Reply-To"] = _address("", out.reply_to)
    if out.in_reply_to:
        msg["In-Reply-To"] = f"<{header_safe(out.in_reply_to, 990)}>"
    refs = [header_safe(r, 990) for r in out.references if r and "<" not in r and ">" not in r]
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs[-20:])
    for name, value in out.extra_headers:
        msg[header_safe(name, 76)] = header_safe(value)
    msg.set_content(out.text)
    if out.html:
        msg.add_alternative(out.html, subtype="html")
    raw = msg.as_bytes()
    _verify_headers(raw, expected=[k.lower() for k in msg.keys()])
    return raw


def _verify_headers(raw: bytes, expected: list[str]) -> None:
    head = raw.split(b"\r\n\r\n", 1)[0]
    parsed = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.compat32)
    got = [k.lower() for k in parsed.keys()]
    if got != expected:
        raise HeaderInjection(f"generated headers {got} differ from the ones set {expected}")
