"""A broken header block read like a lenient mail client reads it.

Python's parser ends the header block at the first line that is neither a field nor an
indented continuation: an unindented continuation line (a mailer that wraps a long Subject
without the leading space) or a line of junk before the first field (a gateway's banner, a
stray blank-less "From " variant) loses every header after it — From, To and Subject among
them. Here such lines are read as the continuation they are, or skipped as the junk they are,
before the parser sees the bytes. The spool keeps the bytes as received.
"""
from __future__ import annotations

import re

_FIELD = re.compile(rb"([!-9;-~]{1,100})[ \t]*:")
# Fields a real header block has: a run of odd lines is repaired only when one of these follows.
_KNOWN = frozenset(name.encode() for name in (
    "from", "to", "cc", "bcc", "subject", "date", "message-id", "reply-to", "sender", "in-reply-to",
    "references", "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
    "return-path", "received", "x-mailer", "user-agent", "importance", "x-priority", "thread-topic",
    "thread-index", "list-id", "precedence", "auto-submitted", "organization", "delivered-to"))
_MAX_ODD_RUN = 3  # more odd lines in a row than this is a body that lost its blank line, not a fold
_MAX_JUNK = 5


def repaired_header_block(raw: bytes, header_end: int) -> bytes:
    """raw with its top header block (raw[:header_end]) made readable; raw itself when it needs nothing."""
    block = raw[:header_end]
    lines = block.split(b"\n")
    start = _first_field(lines)
    fixed: list[bytes] = []
    changed = start > 0
    i = start
    while i < len(lines):
        line = lines[i]
        if _FIELD.match(line) or line[:1] in (b" ", b"\t") or not line.strip(b"\r") or line.startswith(b"From "):
            fixed.append(line)
            i += 1
            continue
        run = _odd_run(lines, i)
        if run == 0:
            break  # the body starts here (its separator line is missing): leave it to the parser
        fixed.extend(b" " + lines[j] for j in range(i, i + run))
        changed = True
        i += run
    if not changed:
        return raw
    return b"\n".join(fixed + lines[i:]) + raw[header_end:]


def _first_field(lines: list[bytes]) -> int:
    """Index of the first header field when a few junk lines precede it, else 0."""
    if not lines or _FIELD.match(lines[0]) or lines[0].startswith(b"From "):
        return 0
    for index, line in enumerate(lines[1:_MAX_JUNK + 1], start=1):
        if not line.strip(b"\r"):
            return 0  # a blank line before any field: there is no header block to find
        found = _FIELD.match(line)
        if found and found.group(1).lower() in _KNOWN:
            return index
    return 0


def _odd_run(lines: list[bytes], i: int) -> int:
    """How many lines from i are unindented continuations: a short run followed by a known field."""
    for j in range(i, min(i + _MAX_ODD_RUN, len(lines))):
        line = lines[j]
        if not line.strip(b"\r"):
            return 0
        found = _FIELD.match(line)
        if found:
            return j - i if found.group(1).lower() in _KNOWN else 0
    return 0
