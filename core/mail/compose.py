"""Outgoing MIME. Every value that came from outside is scrubbed of line breaks, and the
finished message is parsed back to prove it has exactly the headers we set.

Python 3.11.7 lacks `policy.verify_generated_headers` (CVE-2024-6923), so the check is ours.
"""
from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass, field
from email import base64mime, quoprimime
from email.header import Header
from email.utils import format_datetime, formataddr
from urllib.parse import quote

from core.errors import HeaderInjection
from core.models import utcnow

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


def _text_part(text: str, subtype: str) -> tuple[list[tuple[str, str]], str]:
    """Content headers and the encoded body (CRLF lines) of a text part: 7bit when it can be, else
    quoted-printable (or base64 when most of it is not ASCII)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    ctype = ("Content-Type", f'text/{subtype}; charset="utf-8"')
    if text.isascii() and all(len(line) <= 76 for line in text.split("\n")):
        return [ctype, ("Content-Transfer-Encoding", "7bit")], text.replace("\n", "\r\n")
    data = text.encode("utf-8")
    if (len(data) - len(data.translate(None, _HIGH))) * 3 > len(data):
        return [ctype, ("Content-Transfer-Encoding", "base64")], base64mime.body_encode(data, eol="\r\n")
    return [ctype, ("Content-Transfer-Encoding", "quoted-printable")], _quoted_printable(data)


def _quoted_printable(data: bytes) -> str:
    """Quoted-printable of LF-separated text, with CRLF line ends and at most 76 columns: binascii's
    encoder (C, a quarter of the email package's time), else the email package's for the rare line
    binascii makes one column too long. binascii takes the line end from the first one it meets,
    hence the CRLF put after the data and taken off again."""
    encoded = binascii.b2a_qp(data.replace(b"\n", b"\r\n") + b"\r\n", istext=True)[:-2].decode("ascii")
    if all(len(line) <= 76 for line in encoded.split("\r\n")):
        return encoded
    return quoprimime.body_encode(data.decode("latin-1"), eol="\r\n")


def _entity(headers: list[tuple[str, str]], body: str) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n" + body


def _multipart(subtype: str, parts: list[str]) -> tuple[list[tuple[str, str]], str]:
    """A multipart body of finished parts, its boundary random (our parts never contain it)."""
    boundary = f"=_pd_{secrets.token_hex(12)}"
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return [("Content-Type", f'multipart/{subtype}; boundary="{boundary}"')], body


def build_mail(out: OutgoingMail) -> bytes:
    """The mail as bytes ready for SMTP (CRLF line ends). Raises HeaderInjection if it would not be safe.

    Header values are encoded here (RFC 2047 words, IDNA domains, folded at 78 columns) and the
    MIME entities written out directly: the email package's header registry, message objects and
    generator cost more than all the database work of a ticket's intake (the result is parsed
    back below, so a value that would add a header is still caught).
    """
    headers = [("From", _address(out.from_name, out.from_address)), ("To", _address(out.to_name, out.to)),
               ("Subject", _unstructured("Subject", header_safe(out.subject))),
               ("Date", format_datetime(utcnow())), ("Message-ID", _msgids([out.message_id]))]
    if out.reply_to:
        headers.append(("Reply-To", _address("", out.reply_to)))
    if out.in_reply_to:
        headers.append(("In-Reply-To", _msgids([out.in_reply_to])))
    refs = [r for r in out.references if r and "<" not in r and ">" not in r]
    if refs:
        headers.append(("References", _msgids(refs[-20:])))
    for name, value in out.extra_headers:
        name = header_safe(name, 76)
        headers.append((name, _unstructured(name, header_safe(value))))
    headers.append(("MIME-Version", "1.0"))
    body_headers, body = _body(out)
    if out.attachments:
        body_headers, body = _multipart("mixed", [_entity(body_headers, body),
                                                  *(_attachment_part(a) for a in out.attachments)])
    headers.extend(body_headers)
    raw = _entity(headers, body).encode("utf-8")
    _verify_headers(raw, expected=[name.lower() for name, _ in headers])
    return raw


def _body(out: OutgoingMail) -> tuple[list[tuple[str, str]], str]:
    if out.html:
        return _multipart("alternative", [_entity(*_text_part(out.text, "plain")),
                                          _entity(*_text_part(out.html, "html"))])
    return _text_part(out.text, "plain")


_TOKEN = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


def _attachment_part(att: MailAttachment) -> str:
    """A base64 part carrying the file's exact bytes; its name RFC 2231-encoded when not plain ASCII."""
    ctype = att.content_type.strip().lower()
    name = header_safe(att.filename, 200).replace("\\", "_").replace('"', "_") or "attachment.bin"
    headers = [("Content-Type", ctype if _TOKEN.fullmatch(ctype) else "application/octet-stream")]
    if name.isascii():
        headers.append(("Content-Disposition", f'attachment; filename="{name}"'))
    else:
        headers.append(("Content-Disposition", f"attachment; filename*=utf-8''{quote(name, safe='')}"))
    headers.append(("Content-Transfer-Encoding", "base64"))
    return _entity(headers, base64mime.body_encode(att.data, maxlinelen=76, eol="\r\n"))


_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def _verify_headers(raw: bytes, expected: list[str]) -> None:
    """The header names a reader of these bytes finds are exactly the ones set. Read as the email
    package reads a header block (which breaks lines at CR, LF or CRLF; a line starting with a space
    or tab continues the header before it), without its parser: that cost a fifth of building the
    mail."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    got = []
    for line in _LINE_BREAK.split(head):
        if line[:1] in (b" ", b"\t"):
            continue
        name, colon, _ = line.partition(b":")
        got.append(name.decode("ascii", "replace").lower() if colon else f"<not a header: {line[:40]!r}>")
    if got != expected:
        raise HeaderInjection(f"generated headers {got} differ from the ones set {expected}")
