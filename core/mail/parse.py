"""Raw bytes → ParsedMail: headers decoded, bodies and attachments extracted, never a crash.

Every header access is guarded: real-world mail breaks every rule, and a broken header
must cost us that header, never the message. The only exception raised on purpose is
MessageRejected, for mail past our limits (header size, MIME depth, part count), and
those limits are checked on the raw bytes before the stdlib parser (which recurses once
per nesting level) ever sees them.
"""
from __future__ import annotations

import binascii
import email
import email.policy
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from email.message import Message
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime

from core.errors import MessageRejected
from core.mail.charset import decode_bytes, decode_words, normalise_charset, raw_header_text
from core.mail.headers import repaired_header_block
from core.mail.html import html_to_text
from core.mail.mime import repaired_multipart_headers

MAX_DEPTH = 100
MAX_PARTS = 1000
MAX_HEADER_BYTES = 1_000_000
_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_ADDR_SPEC = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_PLAIN_ADDRESS = re.compile(r"[^\s<>,;:\"@()\[\]\\]+@[^\s<>,;:\"@()\[\]\\]+")
_MIME_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,100}/[a-z0-9!#$&^_.+-]{1,100}")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[qQbB]\?[^?]*?\?=")
_REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status", "message/feedback-report",
                 "message/disposition-notification", "message/global-disposition-notification")
_MESSAGE_TYPES = ("message/rfc822", "message/global")
# Detached signatures of multipart/signed (PGP/MIME, S/MIME): kept with the mail, shown as "signed".
SIGNATURE_TYPES = ("application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature")
_MESSAGE_TYPES_B = (b"message/rfc822", b"message/global")


class _RawHeaders(Compat32):
    """compat32, but header values come back as sent (raw 8-bit bytes as surrogate escapes)
    instead of as Header objects whose unknown-8bit text has already become U+FFFD."""

    def header_fetch_parse(self, name, value):
        return value


_POLICY = _RawHeaders()


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
        return self._first_values.get(name.lower(), "")

    @cached_property
    def _first_values(self) -> dict[str, str]:
        # Asked for dozens of headers per mail (the automatic-mail checks): one pass, not one each.
        first: dict[str, str] = {}
        for key, value in self.headers:
            first.setdefault(key.lower(), value)
        return first

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


_MESSAGE_ID_FIELD = re.compile(rb"^message-id[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)", re.IGNORECASE | re.MULTILINE)


def quick_message_id(raw: bytes) -> str:
    """The Message-ID from the header block only, without parsing anything else (the doors use
    it on the path to their answer: a regex over the header block the stdlib would read, about a
    tenth of what parsing that block cost)."""
    end = _top_header_length(raw)
    blank = _BLANK_LINE.search(raw, 0, MAX_HEADER_BYTES)
    if blank is not None and end < blank.start():  # a broken block: read it as parse_mail does
        raw = _readable_headers(raw)
        end = _top_header_length(raw)
    found = _MESSAGE_ID_FIELD.search(raw, 0, end)
    if found is None:
        return ""
    return normalise_msgid(found.group(1).decode("ascii", "replace").replace("\r", ""))


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
    """Drop NUL, other control characters and lone surrogates that databases and headers refuse."""
    return _CONTROL_RE.sub("", value)


def decode_header_value(raw_value: object, hints: tuple[str, ...] = ()) -> str:
    """Unfold and decode a header (RFC 2047 words, raw 8-bit text); never raises."""
    if raw_value is None:
        return ""
    try:
        text = decode_words(str(raw_value), hints)
    except Exception:  # a header we cannot read costs that header only
        text = str(raw_value)
    return clean_text(text.replace("\r", " ").replace("\n", " "))


def decode_payload(part: Message, hints: tuple[str, ...] = ()) -> str:
    """A text part's content as str, whatever its declared (or missing, or wrong) charset."""
    data = _payload_bytes(part)
    try:
        charset = part.get_param("charset") or ""
    except Exception:
        charset = ""
    if isinstance(charset, tuple):  # RFC 2231-encoded parameter
        charset = charset[2]
    return clean_text(decode_bytes(data, str(charset), hints))


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a transfer encoding the stdlib chokes on: keep the text as sent
        data = None
    if isinstance(data, bytes):
        return data
    return _raw_payload(part).encode("utf-8", "surrogateescape")


def _raw_payload(part: Message) -> str:
    """The undecoded body text of a leaf part ('' for a container). get_payload() itself can
    raise on a charset parameter full of raw 8-bit bytes, so this reads what it would read."""
    payload = getattr(part, "_payload", "")
    return payload if isinstance(payload, str) else ""


def _children(part: Message) -> list[Message]:
    """The sub-parts of a multipart or message/* part (is_multipart() is a type check, safe)."""
    return [c for c in part.get_payload() if isinstance(c, Message)] if part.is_multipart() else []


# --- limits, checked on the raw bytes -------------------------------------------------

_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_DELIMITER = re.compile(rb"^--([^\r\n]*)", re.MULTILINE)
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)", re.IGNORECASE | re.MULTILINE)
_BOUNDARY = re.compile(rb"""boundary\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;]+))""", re.IGNORECASE)


def check_limits(raw: bytes) -> None:
    """Raise MessageRejected for a header block over MAX_HEADER_BYTES, MIME nesting deeper than
    MAX_DEPTH or more than MAX_PARTS parts. One linear pass over the boundaries, no recursion."""
    if _top_header_length(raw) > MAX_HEADER_BYTES:
        raise MessageRejected(f"header block larger than {MAX_HEADER_BYTES} bytes")
    stack: list[bytes | None] = []  # open multipart boundaries; None for a nested message
    parts, pos, in_headers = 0, 0, True
    while pos < len(raw):
        if in_headers:
            pos, in_headers = _open_container(raw, pos, stack)
            if len(stack) > MAX_DEPTH:
                raise MessageRejected(f"MIME nesting deeper than {MAX_DEPTH} levels")
            continue
        found = _DELIMITER.search(raw, pos) if any(b is not None for b in stack) else None
        if found is None:
            return
        line_end = raw.find(b"\n", found.end())
        pos = len(raw) if line_end < 0 else line_end + 1
        line = found.group(1).rstrip(b" \t\r")
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is not None and line in (stack[i], stack[i] + b"--"):
                closing = line != stack[i]
                del stack[i + (0 if closing else 1):]
                parts += not closing
                in_headers = not closing
                break
        if parts > MAX_PARTS:
            raise MessageRejected(f"more than {MAX_PARTS} MIME parts")


def _top_header_length(raw: bytes) -> int:
    """Length of the top-level header block as the stdlib would read it (stops past the limit)."""
    pos = 0
    while pos < len(raw) and pos <= MAX_HEADER_BYTES:
        end = raw.find(b"\n", pos)
        end = len(raw) if end < 0 else end + 1
        line = raw[pos:end]
        if not line.strip(b"\r\n") or not _HEADER_LINE.match(line):
            return pos
        pos = end
    return pos


def _open_container(raw: bytes, pos: int, stack: list[bytes | None]) -> tuple[int, bool]:
    """Read the header block at pos and push the boundary it declares (None for an enclosed
    message). Returns the body's offset and whether that body starts with headers again."""
    if raw.startswith(b"\n", pos) or raw.startswith(b"\r\n", pos):
        return raw.find(b"\n", pos) + 1, False
    blank = _BLANK_LINE.search(raw, pos)
    end = blank.end() if blank else len(raw)
    ctype = _CONTENT_TYPE.search(raw, pos, end)
    value = ctype.group(1).strip().lower() if ctype else b""
    if value.startswith(b"multipart/"):
        boundary = _BOUNDARY.search(ctype.group(1))
        if boundary:
            stack.append(next(g for g in boundary.groups() if g is not None).rstrip())
    elif value.startswith(_MESSAGE_TYPES_B):
        stack.append(None)
        return end, True
    return end, False


# --- headers ----------------------------------------------------------------------------

def _addresses(msg: Message, name: str, hints: tuple[str, ...]) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs of every instance of an address header."""
    try:
        values = [raw_header_text(str(v), hints) for v in msg.get_all(name, [])]
    except Exception:
        return []
    pairs: list[tuple[str, str]] = []
    for value in values:
        value = re.sub(r"\r?\n[ \t]*", " ", value)
        # Encoded words may hold commas or quotes (=?..?Q?Doe,=20John?=): keep them whole.
        words: list[str] = []
        masked = _ENCODED_WORD.sub(lambda m: f"\ue000{words.append(m.group(0)) or len(words) - 1}\ue001", value)
        try:
            found = getaddresses([masked])
        except Exception:
            found = []
        if not any("@" in addr for _, addr in found):
            found = [("", addr) for addr in _ADDR_SPEC.findall(masked)]
        for display, addr in found:
            addr = _usable_address(addr)
            if addr:
                display = re.sub("\ue000(\\d+)\ue001", lambda m: words[int(m.group(1))], display)
                pairs.append((decode_header_value(display, hints).strip(), addr))
    return pairs


def _usable_address(addr: str) -> str:
    """A plain addr-spec we can write back into a header, or ''. "Test test@example.com"
    (no angle brackets) yields test@example.com, not an address with a space in it."""
    addr = clean_text(addr).strip().lower()
    if _PLAIN_ADDRESS.fullmatch(addr):
        return addr[:320]
    found = _ADDR_SPEC.search(addr)
    return found.group(0)[:320] if found else ""


def _address_list(msg: Message, name: str, hints: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(addr for _, addr in _addresses(msg, name, hints)))


def _header(msg: Message, name: str, hints: tuple[str, ...]) -> str:
    try:
        value = msg.get(name)
    except Exception:
        return ""
    return decode_header_value(value, hints) if value is not None else ""


def _sender(msg: Message, hints: tuple[str, ...]) -> tuple[str, str]:
    """(name, address) of whom the mail is from, as a lenient client reads it: From, else Reply-To,
    else Sender, when From is missing, empty (<>) or names no address (the envelope comes last, at intake)."""
    for name in ("From", "Reply-To", "Sender"):
        found = _addresses(msg, name, hints)
        if found:
            display, address = found[0]
            return (display or _header(msg, "From", hints) if name != "From" else display), address
    return _header(msg, "From", hints), ""


_FOLD = re.compile(r"[ \t]*\r?\n[ \t]+")


def _subject(msg: Message, hints: tuple[str, ...]) -> str:
    """The Subject as clients show it: each fold (line break and its indentation) one space, tabs spaces."""
    try:
        value = msg.get("Subject")
    except Exception:
        return ""
    if value is None:
        return ""
    return decode_header_value(_FOLD.sub(" ", str(value)), hints).replace("\t", " ")


def _readable_headers(raw: bytes) -> bytes:
    """raw, with a top header block the stdlib would cut short (an unindented continuation line,
    junk before the first field) repaired; see core.mail.headers."""
    blank = _BLANK_LINE.search(raw, 0, MAX_HEADER_BYTES)
    end = blank.start() if blank else min(len(raw), MAX_HEADER_BYTES)
    if _top_header_length(raw) >= end:
        return raw  # the parser reads the whole block already
    return repaired_header_block(raw, end)


def _all_headers(msg: Message, hints: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # raw (name, value) pairs: no parsing, cannot raise
    return tuple((clean_text(str(key)), decode_header_value(value, hints)) for key, value in msg._headers)


def _date(msg: Message) -> datetime | None:
    try:
        value = msg.get("Date")
        return parsedate_to_datetime(str(value)) if value else None
    except Exception:
        return None


def _charset_hints(msg: Message) -> tuple[str, ...]:
    """Charsets the message declares anywhere: the best guess for its raw 8-bit headers."""
    found: list[str] = []
    for part in _safe_walk(msg):
        try:
            charset = normalise_charset(part.get_content_charset())
        except Exception:
            continue
        if charset and charset not in ("utf-8", "cp1252") and charset not in found:
            found.append(charset)
    return tuple(found[:3])


def _safe_walk(msg: Message, depth: int = 0):
    yield msg
    for child in _children(msg) if depth < MAX_DEPTH else []:
        yield from _safe_walk(child, depth + 1)


# --- the MIME tree ----------------------------------------------------------------------

class _Collector:
    """Walks the MIME tree once: body texts, HTML and attachments, in document order."""

    def __init__(self, hints: tuple[str, ...]) -> None:
        self.hints = hints
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.parts = 0

    def visit(self, part: Message, depth: int = 0, forced_attachment: bool = False) -> None:
        self.parts += 1
        if depth > MAX_DEPTH:
            raise MessageRejected(f"MIME nesting deeper than {MAX_DEPTH} levels")
        if self.parts > MAX_PARTS:
            raise MessageRejected(f"more than {MAX_PARTS} MIME parts")
        ctype = _content_type(part)
        if ctype.startswith("multipart/") and part.is_multipart():
            for index, child in enumerate(_children(part)):
                # multipart/related: the first part is the document, the rest its resources
                related = ctype == "multipart/related" and index > 0
                self.visit(child, depth + 1, forced_attachment or related)
            return
        if ctype.startswith("multipart/"):  # its boundary never came: the rest is text
            ctype = "text/plain"
        filename = _filename(part, self.hints)
        if forced_attachment or _is_attachment(part, ctype, filename):
            self.attachments.append(self._attachment(part, ctype, filename))
            if not forced_attachment and _shown_inline(part, ctype, filename):
                self._show(part, ctype)  # and kept as the file it was sent as
        else:
            self._show(part, ctype)

    def _show(self, part: Message, ctype: str) -> None:
        """A text part's content into the body (HTML to the HTML body)."""
        if ctype == "text/html":
            self.htmls.append(decode_payload(part, self.hints))
        else:
            text = decode_payload(part, self.hints).replace("\r\n", "\n")
            text, uuencoded = _split_uuencoded(text)
            self.texts.append(text)
            self.attachments.extend(uuencoded)

    def _attachment(self, part: Message, ctype: str, filename: str) -> ParsedAttachment:
        content_id = _header(part, "Content-ID", self.hints)
        if not filename:
            filename = self._unique(_default_filename(part, ctype, content_id, self.hints))
        return ParsedAttachment(
            filename=filename,
            content_type=ctype, data=_attachment_bytes(part, ctype),
            content_id=(normalise_msgid(content_id) or content_id.strip("<> "))[:490],
            inline=_disposition(part) == "inline")


    def _unique(self, name: str) -> str:
        """A made-up name not yet taken in this mail: image.jpg, image-2.jpg…"""
        taken = {a.filename for a in self.attachments}
        stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        return candidate


def _shown_inline(part: Message, ctype: str, filename: str) -> bool:
    """A text part the sender marked inline but named: readers show it in the message."""
    return ctype in ("text/plain", "text/html") and bool(filename) and _disposition(part) == "inline"


def _content_type(part: Message) -> str:
    try:
        ctype = part.get_content_type()
    except Exception:
        return "application/octet-stream"
    return ctype if _MIME_TYPE.fullmatch(ctype) else "application/octet-stream"


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _is_attachment(part: Message, ctype: str, filename: str) -> bool:
    if ctype in ("text/plain", "text/html"):
        return bool(filename) or _disposition(part) == "attachment"
    return True


def _param(part: Message, name: str, header: str, hints: tuple[str, ...]) -> str:
    try:
        value = part.get_param(name, header=header)
    except Exception:
        return ""
    if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded text)
        data = value[2].encode("latin-1", "surrogateescape") if isinstance(value[2], str) else b""
        return decode_bytes(data, value[0] or "utf-8", hints)
    if not isinstance(value, str):
        return ""
    return decode_words(value, hints)


def _filename(part: Message, hints: tuple[str, ...]) -> str:
    """The name the sender gave the part (RFC 2231 or RFC 2047 encoded), without any path."""
    name = _param(part, "filename", "content-disposition", hints) or _param(part, "name", "content-type", hints)
    name = clean_text(name.replace("\r", "").replace("\n", "")).strip()
    return re.split(r"[/\\]", name)[-1].strip()[:255]


def _default_filename(part: Message, ctype: str, content_id: str, hints: tuple[str, ...]) -> str:
    """A name for an unnamed part: the enclosed message's subject, its description, or a
    file-like Content-ID (Outlook's image001.png@…), else what its type says it is (image.jpg,
    document.pdf, delivery-status.txt); the collector numbers repeats (image-2.jpg)."""
    ext = {"message/rfc822": ".eml", "message/global": ".eml", "text/plain": ".txt",
           "image/jpeg": ".jpg", "application/octet-stream": ".bin"}.get(ctype)
    ext = ext or (".txt" if ctype in _REPORT_TYPES or ctype.startswith("text/rfc822") else None)
    ext = ext or mimetypes.guess_extension(ctype, strict=False) or ".bin"
    stem = ""
    inner = _children(part) if ctype in _MESSAGE_TYPES else []
    if inner:
        stem = _header(inner[0], "Subject", hints)
    if ctype.startswith("message/"):  # "Undelivered Message", "Delivery report"
        stem = stem or _header(part, "Content-Description", hints)
    local = content_id.strip("<> ").split("@", 1)[0]
    if not stem and re.fullmatch(r"[\w ()-]+\.[A-Za-z0-9]{2,5}", local) and \
            (mimetypes.guess_type(local)[0] or "").split("/")[0] == ctype.split("/")[0]:
        return local[:255]
    stem = re.sub(r"[/\\]", "-", stem).strip()[:200]
    return f"{stem}{ext}" if stem else f"{_type_stem(ctype)}{ext}"


def _type_stem(ctype: str) -> str:
    """What an unnamed part is, from its type, as mail clients name it: image, video, document…"""
    main, _, sub = ctype.partition("/")
    if ctype in _REPORT_TYPES or ctype in ("text/rfc822-headers", "message/global-headers"):
        return sub.removeprefix("global-").removeprefix("text/")  # delivery-status, feedback-report…
    if main in ("image", "video", "audio"):
        return main
    if ctype == "application/octet-stream":
        return "file"
    return "message" if main == "message" else "document"


def _attachment_bytes(part: Message, ctype: str) -> bytes:
    if not part.is_multipart():
        return _payload_bytes(part)
    try:
        children = _children(part)
        if ctype in _MESSAGE_TYPES and children:
            return children[0].as_bytes(policy=email.policy.compat32)
        whole = part.as_bytes(policy=email.policy.compat32)  # delivery-status blocks and the like
        blank = _BLANK_LINE.search(whole)
        return whole[blank.end():] if blank else b""
    except Exception:  # the stdlib generator refuses some broken structures
        return b""


_UU_BEGIN = re.compile(r"^begin [0-7]{3,4} ([^\n]+)\n", re.MULTILINE)
_UU_END = re.compile(r"^end[ \t]*$\n?", re.MULTILINE)


def _split_uuencoded(text: str) -> tuple[str, list[ParsedAttachment]]:
    """Text with uuencoded blocks (`begin 644 name` … `end`) taken out as attachments."""
    kept: list[str] = []
    attachments: list[ParsedAttachment] = []
    pos = 0
    for begin in _UU_BEGIN.finditer(text):
        if begin.start() < pos:
            continue
        end = _UU_END.search(text, begin.end())
        if end is None:
            break
        data = _uudecode(text[begin.end():end.start()])
        if data is None:
            continue
        name = re.split(r"[/\\]", begin.group(1).strip())[-1][:255] or "attachment.bin"
        attachments.append(ParsedAttachment(
            filename=name, content_type=mimetypes.guess_type(name)[0] or "application/octet-stream", data=data))
        kept.append(text[pos:begin.start()])
        pos = end.end()
    kept.append(text[pos:])
    return "".join(kept), attachments


def _uudecode(block: str) -> bytes | None:
    data = bytearray()
    try:
        for line in block.replace("\r", "").split("\n"):
            if line and line not in ("`", " "):
                length = (ord(line[0]) - 32) & 63  # encoders pad lines past their length byte
                data += binascii.a2b_uu(line[:1 + (length * 4 + 2) // 3])
    except (binascii.Error, ValueError):
        return None  # not uuencode after all
    return bytes(data)


# --- the whole mail ---------------------------------------------------------------------

def parse_mail(raw: bytes) -> ParsedMail:
    """Parse raw RFC 5322 bytes. Raises MessageRejected only for limits (header size, depth, parts)."""
    check_limits(raw)
    repaired = repaired_multipart_headers(_readable_headers(raw))
    if repaired is not raw:  # a repaired boundary may reveal nesting the first check could not see
        check_limits(repaired)
    raw = repaired
    try:
        msg = email.message_from_bytes(raw, policy=_POLICY)
        hints = _charset_hints(msg)
        collector = _Collector(hints)
        collector.visit(msg)
    except RecursionError:  # a structure our pre-scan did not see, deeper than Python goes
        raise MessageRejected(f"MIME nesting deeper than {MAX_DEPTH} levels") from None
    html = "\n".join(h for h in collector.htmls if h.strip())
    text = "\n\n".join(t.strip("\n") for t in collector.texts if t.strip())
    from_name, from_address = _sender(msg, hints)
    return ParsedMail(
        message_id=normalise_msgid(_header(msg, "Message-ID", hints)),
        from_address=from_address,
        from_name=from_name.strip().strip('"').strip()[:200],
        subject=_subject(msg, hints)[:998],
        to=_address_list(msg, "To", hints),
        cc=_address_list(msg, "Cc", hints),
        reply_to=_address_list(msg, "Reply-To", hints),
        in_reply_to=msgid_list(_header(msg, "In-Reply-To", hints)),
        references=msgid_list(_header(msg, "References", hints)),
        date=_date(msg),
        text=text or html_to_text(html),
        html=html,
        attachments=tuple(collector.attachments),
        headers=_all_headers(msg, hints),
        defects=tuple(type(d).__name__ for d in msg.defects),
    )
