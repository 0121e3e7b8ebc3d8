"""Raw bytes → ParsedMail: headers decoded, bodies and attachments extracted, never a crash.

Every header access is guarded: real-world mail breaks every rule, and a broken header
must cost us that header, never the message.
"""
from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from datetime import datetime

from core.errors import MessageRejected
from core.mail.html import html_to_text

MAX_DEPTH = 100
MAX_PARTS = 1000
_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    from_address: str
    from_name: str
    subject: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime | None
    text: str
    html: str
    attachments: tuple[ParsedAttachment, ...]
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str:
        """The first value of a header, '' when absent (case-insensitive)."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return ""

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def quick_message_id(raw: bytes) -> str:
    """The Message-ID from the header block only, without parsing bodies (used by the doors)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    msg = email.message_from_bytes(head + b"\n\n", policy=email.policy.compat32)
    return normalise_msgid(str(msg.get("Message-ID", "") or ""))


def normalise_msgid(value: str) -> str:
    """'<abc@x>' or 'abc@x' → 'abc@x' ('' when there is none)."""
    value = clean_text(value).strip()
    found = _MSGID_RE.search(value)
    if found:
        return found.group(1)[:990]
    return value.split()[0][:990] if value and "@" in value else ""


def msgid_list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m[:990] for m in _MSGID_RE.findall(clean_text(value))))


def clean_text(value: str) -> str:
    """Drop NUL and other control characters that databases and headers refuse."""
    return _CONTROL_RE.sub("", value)


def decode_header_value(raw_value: object) -> str:
    """Decode RFC 2047 words; undecodable bytes become replacement characters."""
    if raw_value is None:
        return ""
    text = str(raw_value)
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except Exception:  # malformed encoded-word: keep the raw text
            pass
    text = text.replace("\r", " ").replace("\n", " ")
    return clean_text(re.sub(r"\s+", " ", text)).strip()


def decode_payload(part: Message) -> str:
    """A text part's content as str, whatever its declared (or missing, or wrong) charset."""
    data = part.get_payload(decode=True)
    if data is None:
        payload = part.get_payload()
        return clean_text(payload if isinstance(payload, str) else "")
    if not isinstance(data, bytes):
        return clean_text(str(data))
    charset = _safe_charset(part)
    for candidate in (charset, "utf-8", "cp1252"):
        if not candidate:
            continue
        try:
            return clean_text(data.decode(candidate))
        except (LookupError, UnicodeDecodeError):
            continue
    return clean_text(data.decode("utf-8", errors="replace"))


def _safe_charset(part: Message) -> str:
    try:
        charset = part.get_content_charset() or ""
    except Exception:
        return ""
    charset = charset.strip().strip('"').lower()
    aliases = {"unknown-8bit": "", "x-unknown": "", "us-ascii": "utf-8", "ascii": "utf-8",
               "iso-8859-8-i": "iso-8859-8", "gb2312": "gb18030", "gbk": "gb18030"}
    return aliases.get(charset, charset)


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None:
        try:
            name = part.get_param("name")
        except Exception:
            name = None
    if isinstance(name, tuple):  # undecoded RFC 2231 triple
        name = email.utils.collapse_rfc2231_value(name)
    return decode_header_value(name) if name else ""


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _walk(part: Message, depth: int, counter: list[int]):
    counter[0] += 1
    if depth > MAX_DEPTH:
        raise MessageRejected(f"MIME nesting deeper than {MAX_DEPTH} levels")
    if counter[0] > MAX_PARTS:
        raise MessageRejected(f"more than {MAX_PARTS} MIME parts")
    yield part
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for child in payload:
                if isinstance(child, Message):
                    yield from _walk(child, depth + 1, counter)


def _addresses(msg: Message, name: str) -> tuple[str, ...]:
    try:
        values = [str(v) for v in msg.get_all(name, [])]
    except Exception:
        return ()
    pairs = getaddresses([decode_header_value(v) for v in values])
    return tuple(dict.fromkeys(addr.strip().lower() for _, addr in pairs if "@" in addr))


def _header(msg: Message, name: str) -> str:
    try:
        return decode_header_value(msg.get(name))
    except Exception:
        try:
            return decode_header_value(msg.get_all(name, [""])[0])
        except Exception:
            return ""


def _all_headers(msg: Message) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in msg._headers:  # raw (name, value) pairs: no parsing, cannot raise
        out.append((str(key), decode_header_value(value)))
    return tuple(out)


def _date(msg: Message) -> datetime | None:
    try:
        value = msg.get("Date")
        return parsedate_to_datetime(str(value)) if value else None
    except Exception:
        return None


def _is_attachment(part: Message, ctype: str, filename: str) -> bool:
    try:
        disposition = (part.get_content_disposition() or "").lower()
    except Exception:
        disposition = ""
    if disposition == "attachment" or ctype == "message/rfc822":
        return True
    if ctype.startswith("text/") and not filename and ctype in ("text/plain", "text/html"):
        return False
    return bool(filename) or not ctype.startswith(("text/", "multipart/"))


def _attachment_bytes(part: Message, ctype: str) -> bytes:
    if ctype == "message/rfc822" or part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0].as_bytes(policy=email.policy.compat32)
        return part.as_bytes(policy=email.policy.compat32)
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "replace") if isinstance(payload, str) else b""


def _default_filename(ctype: str, index: int) -> str:
    ext = {"message/rfc822": "eml", "text/calendar": "ics", "text/html": "html",
           "text/plain": "txt", "application/pdf": "pdf", "image/png": "png",
           "image/jpeg": "jpg", "image/gif": "gif"}.get(ctype, "bin")
    return f"attachment-{index}.{ext}"


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse raw RFC 5322 bytes. Raises MessageRejected only for limits (depth, parts)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[ParsedAttachment] = []
    counter = [0]
    skip: set[int] = set()
    for part in _walk(msg, 0, counter):
        if id(part) in skip:
            continue
        ctype = _content_type(part)
        if part.is_multipart() and ctype != "message/rfc822":
            continue
        filename = _filename(part)
        if _is_attachment(part, ctype, filename):
            if ctype == "message/rfc822" and part.is_multipart():
                for inner in _walk(part, 0, [0]):
                    skip.add(id(inner))
            data = _attachment_bytes(part, ctype)
            cid = normalise_msgid(str(part.get("Content-ID", "") or "")) or \
                str(part.get("Content-ID", "") or "").strip("<> ")
            disposition = (part.get_content_disposition() or "") if _safe(part) else ""
            attachments.append(ParsedAttachment(
                filename=filename or _default_filename(ctype, len(attachments) + 1),
                content_type=ctype, data=data, content_id=clean_text(cid)[:490],
                inline=disposition == "inline"))
        elif ctype == "text/html":
            htmls.append(decode_payload(part))
        else:
            texts.append(decode_payload(part))
    from_name, from_address = parseaddr(_header(msg, "From"))
    if "@" not in from_address:
        from_address = ""
    return ParsedMail(
        message_id=normalise_msgid(_header(msg, "Message-ID")),
        from_address=from_address.strip().lower()[:320],
        from_name=clean_text(from_name).strip()[:200],
        subject=_header(msg, "Subject")[:998],
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        reply_to=_addresses(msg, "Reply-To"),
        in_reply_to=msgid_list(_header(msg, "In-Reply-To")),
        references=msgid_list(_header(msg, "References")),
        date=_date(msg),
        text="\n\n".join(t for t in texts if t.strip()) or html_to_text("\n".join(htmls)),
        html="\n".join(htmls),
        attachments=tuple(attachments),
        headers=_all_headers(msg),
        defects=tuple(type(d).__name__ for d in msg.defects),
    )


def _safe(part: Message) -> bool:
    try:
        part.get_content_disposition()
        return True
    except Exception:
        return False

