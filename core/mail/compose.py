"""Outgoing MIME. Every value that came from outside is scrubbed of line breaks, and the
finished message is parsed back to prove it has exactly the headers we set.

Python 3.11.7 lacks `policy.verify_generated_headers` (CVE-2024-6923), so the check is ours.
"""
from __future__ import annotations

import email
import email.policy
import re
import secrets
from functools import lru_cache
from dataclasses import dataclass, field
from email import base64mime, quoprimime
from email.header import Header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import EmailPolicy
from email.utils import format_datetime, formataddr
from urllib.parse import quote

from core.errors import HeaderInjection
from core.models import utcnow

@lru_cache(maxsize=64)
def _parsed_header(name: str, value: str):
    return email.policy.SMTP.header_factory(name, value)


class _WriteAsIsPolicy(EmailPolicy):
    """policy.SMTP (CRLF, 7-bit) that writes our already-encoded, already-folded values as they
    are, and parses a header it must read (the generator asks for Content-Type) once per value
    instead of once per mail: header objects are immutable, so a parsed one can be shared."""

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name"):
            return value
        return _parsed_header(name, "".join(value.splitlines()))


_WRITE_AS_IS = _WriteAsIsPolicy(linesep="\r\n", refold_source="none")
_HIGH = bytes(range(128, 256))  # deleting these counts the non-ASCII bytes at C speed
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def header_safe(value: str, limit: int = 900) -> str:
    """A single-line header value: CR, LF and every other control character become spaces."""
    return re.sub(r"\s{2,}", " ", _UNSAFE.sub(" ", value)).strip()[:limit]


@dataclass(frozen=True)
class MailAttachment:
    """A file sent with a mail, as stored (name and type as uploaded, the exact bytes)."""
    filename: str
    content_type: str
    data: bytes


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
    attachments: tuple[MailAttachment, ...] = field(default=())


def _address(name: str, addr: str) -> str:
    """'Name <local@domain>' with the name quoted or RFC 2047-encoded and the domain in IDNA."""
    addr = header_safe(addr, 320)
    if "@" not in addr or any(c in addr for c in ' <>,;"'):
        raise HeaderInjection(f"not a single mail address: {addr!r}")
    local, _, domain = addr.rpartition("@")
    if not local.isascii():
        raise HeaderInjection(f"a non-ASCII local part needs SMTPUTF8, which we do not send: {addr!r}")
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise HeaderInjection(f"not a valid domain: {addr!r}") from None
    return formataddr((header_safe(name, 200), f"{local}@{domain}"), charset="utf-8")


def mailable(address: str) -> bool:
    """Whether a mail to this address can be written (one plain address; a non-ASCII domain is
    sent in IDNA, a non-ASCII local part would need SMTPUTF8, which we do not speak)."""
    try:
        _address("", address)
    except HeaderInjection:
        return False
    return True


def _unstructured(name: str, value: str) -> str:
    """A text header value: RFC 2047-encoded when it is not ASCII, folded at whitespace."""
    if not value.isascii():
        return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return _folded(value.split(" "), first=len(name) + 2)


def _msgids(ids: list[str]) -> str:
    """'<a> <b>' folded onto lines of at most 78 columns."""
    return _folded([f"<{header_safe(i, 990)}>" for i in ids], first=len("References: "))


def _folded(words: list[str], first: int) -> str:
    """Words joined by spaces, a line break before a word that would pass column 78 (never
    before the first word: a single word longer than a line stays whole, up to 998)."""
    lines = [words[0]]
    room = 78 - first
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) <= room:
            lines[-1] += " " + word
        else:
            lines.append(word)
            room = 77
    return "\r\n ".join(lines)


def _set(msg: Message, name: str, value: str) -> None:
    msg.set_raw(name, value)


def _fill_text(part: Message, text: str, subtype: str) -> None:
    """Content headers and the encoded body of a text part: 7bit when it can be, else
    quoted-printable (or base64 when most of it is not ASCII)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    _set(part, "Content-Type", f'text/{subtype}; charset="utf-8"')
    if text.isascii() and all(len(line) <= 76 for line in text.split("\n")):
        _set(part, "Content-Transfer-Encoding", "7bit")
        part.set_payload(text)
        return
    data = text.encode("utf-8")
    if (len(data) - len(data.translate(None, _HIGH))) * 3 > len(data):
        _set(part, "Content-Transfer-Encoding", "base64")
        part.set_payload(base64mime.body_encode(data))
    else:
        _set(part, "Content-Transfer-Encoding", "quoted-printable")
        part.set_payload(quoprimime.body_encode(data.decode("latin-1")))


def _text_part(text: str, subtype: str) -> Message:
    part = Message(policy=_WRITE_AS_IS)
    _fill_text(part, text, subtype)
    return part


def build_mail(out: OutgoingMail) -> bytes:
    """The mail as bytes ready for SMTP (CRLF line ends). Raises HeaderInjection if it would not be safe.

    Header values are encoded here (RFC 2047 words, IDNA domains, folded at 78 columns) and set
    raw, so `email.policy.SMTP` only writes them out: letting its header registry parse and refold
    each header cost more than all the database work of a ticket's intake.
    """
    msg = EmailMessage(policy=_WRITE_AS_IS)
    _set(msg, "From", _address(out.from_name, out.from_address))
    _set(msg, "To", _address(out.to_name, out.to))
    _set(msg, "Subject", _unstructured("Subject", header_safe(out.subject)))
    _set(msg, "Date", format_datetime(utcnow()))
    _set(msg, "Message-ID", _msgids([out.message_id]))
    if out.reply_to:
        _set(msg, "Reply-To", _address("", out.reply_to))
    if out.in_reply_to:
        _set(msg, "In-Reply-To", _msgids([out.in_reply_to]))
    refs = [r for r in out.references if r and "<" not in r and ">" not in r]
    if refs:
        _set(msg, "References", _msgids(refs[-20:]))
    for name, value in out.extra_headers:
        name = header_safe(name, 76)
        _set(msg, name, _unstructured(name, header_safe(value)))
    _set(msg, "MIME-Version", "1.0")
    if out.attachments:
        _set(msg, "Content-Type", f'multipart/mixed; boundary="=_pd_{secrets.token_hex(12)}"')
        body = Message(policy=_WRITE_AS_IS)
        _fill_body(body, out)
        msg.set_payload([body, *(_attachment_part(a) for a in out.attachments)])
    else:
        _fill_body(msg, out)
    raw = msg.as_bytes()
    _verify_headers(raw, expected=[k.lower() for k in msg.keys()])
    return raw


def _fill_body(part: Message, out: OutgoingMail) -> None:
    if out.html:
        _set(part, "Content-Type", f'multipart/alternative; boundary="=_pd_{secrets.token_hex(12)}"')
        part.set_payload([_text_part(out.text, "plain"), _text_part(out.html, "html")])
    else:
        _fill_text(part, out.text, "plain")


_TOKEN = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


def _attachment_part(att: MailAttachment) -> Message:
    """A base64 part carrying the file's exact bytes; its name RFC 2231-encoded when not plain ASCII."""
    part = Message(policy=_WRITE_AS_IS)
    ctype = att.content_type.strip().lower()
    name = header_safe(att.filename, 200).replace("\\", "_").replace('"', "_") or "attachment.bin"
    _set(part, "Content-Type", ctype if _TOKEN.fullmatch(ctype) else "application/octet-stream")
    if name.isascii():
        _set(part, "Content-Disposition", f'attachment; filename="{name}"')
    else:
        _set(part, "Content-Disposition", f"attachment; filename*=utf-8''{quote(name, safe='')}")
    _set(part, "Content-Transfer-Encoding", "base64")
    part.set_payload(base64mime.body_encode(att.data, maxlinelen=76))
    return part


def _verify_headers(raw: bytes, expected: list[str]) -> None:
    head = raw.split(b"\r\n\r\n", 1)[0]
    # Headers only: a multipart Content-Type would otherwise have the parser compile a regex for
    # its boundary, once per mail (the boundary is random), which cost more than building the mail.
    parsed = BytesHeaderParser(policy=email.policy.compat32).parsebytes(head + b"\r\n\r\n")
    got = [k.lower() for k in parsed.keys()]
    if got != expected:
        raise HeaderInjection(f"generated headers {got} differ from the ones set {expected}")
