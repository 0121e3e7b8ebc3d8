"""Multipart headers that break the stdlib parser, repaired on a copy of the bytes before parsing.

- a boundary folded inside its quotes (`boundary="----=_Part_1_` CRLF ` 2345"`): the delimiter
  lines in the body carry it without the fold, so it is read without the line break and its
  indentation, unless the body uses the RFC 5322 reading (the indentation kept);
- `Content-Type: multipart` without a subtype: RFC 2046 §5.1.7 reads an unknown subtype as
  multipart/mixed, and so do we (the stdlib would read the whole part as text/plain);
- a multipart without a boundary parameter: the first delimiter-looking line of its body names it.

Each repair is bounded (a few per mail, a window of the body), so the pass stays linear.
"""
from __future__ import annotations

import re

_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*", re.IGNORECASE | re.MULTILINE)
_QUOTED_BOUNDARY = re.compile(rb'boundary\s*=\s*"([^"]*)"', re.IGNORECASE)
_ANY_BOUNDARY = re.compile(rb"boundary\s*=", re.IGNORECASE)
_NO_SUBTYPE = re.compile(rb"^(content-type[ \t]*:[ \t\r\n]*multipart)(?=[ \t]*(;|\r?$))", re.IGNORECASE)
_DELIMITER = re.compile(rb"^--([!-~][ -~]{0,69}?)[ \t]*\r?$", re.MULTILINE)
_BLANK = re.compile(rb"\n\r?\n")
_MAX_REPAIRS = 10
_WINDOW = 1_000_000  # how far into a part's body a repair looks for its delimiter lines


def repaired_multipart_headers(raw: bytes) -> bytes:
    """raw with broken multipart Content-Type fields rewritten for the parser (raw itself when none is)."""
    if b"ultipart" not in raw and b"ULTIPART" not in raw:
        return raw
    pieces: list[bytes] = []
    pos = repairs = 0
    for field in _CONTENT_TYPE.finditer(raw):
        value = field.group(0)
        if b"multipart" not in value.lower():
            continue
        fixed = _repaired(value, raw, field.end())
        if fixed != value:
            pieces += [raw[pos:field.start()], fixed]
            pos = field.end()
            repairs += 1
            if repairs >= _MAX_REPAIRS:
                break
    if not pieces:
        return raw
    return b"".join(pieces) + raw[pos:]


def _repaired(value: bytes, raw: bytes, end: int) -> bytes:
    value = _NO_SUBTYPE.sub(rb"\1/mixed", value, count=1)
    quoted = _QUOTED_BOUNDARY.search(value)
    if quoted is not None and b"\n" in quoted.group(1):
        folded = quoted.group(1)
        kept_space = re.sub(rb"\r?\n", b"", folded)
        tight = re.sub(rb"\r?\n[ \t]*", b"", folded)
        body = raw[end:end + _WINDOW]
        chosen = kept_space if b"--" + kept_space in body else tight
        return value[:quoted.start(1)] + chosen + value[quoted.end(1):]
    if quoted is None and not _ANY_BOUNDARY.search(value):
        blank = _BLANK.search(raw, end, end + _WINDOW)
        found = _DELIMITER.search(raw, blank.end(), blank.end() + _WINDOW) if blank else None
        if found is not None:
            return value.rstrip(b"\r; \t") + b'; boundary="' + found.group(1) + b'"' + (b"\r" if value.endswith(b"\r") else b"")
    return value
