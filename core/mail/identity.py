"""Is this the same mail again? A fingerprint of a mail's bytes that ignores what the way here added.

The same mail delivered twice (an MTA retry, SMTP and IMAP, two of our addresses) differs only in
the trace and filtering headers each hop prepends and in its line endings; a different mail that
reuses a Message-ID (broken mailers, templates, gateways) differs in what its author sent.
"""
from __future__ import annotations

import hashlib
import re

# Headers that relays, filters and mail stores add on the way (RFC 5321 trace fields and their
# kin): two deliveries of one mail differ in these and in nothing else.
_ADDED_ON_THE_WAY = re.compile(
    rb"(received|x-received|return-path|delivered-to|x-delivered-to|x-original-to|envelope-to|x-envelope-[\w-]*|"
    rb"authentication-results|arc-[\w-]*|received-spf|x-spam[\w-]*|x-virus[\w-]*|x-amavis[\w-]*|x-greylist|"
    rb"x-ms-exchange-[\w-]*|x-microsoft-antispam[\w-]*|x-forefront-[\w-]*|x-eopattributedmessage|x-gm-[\w-]*|"
    rb"x-google-[\w-]*|x-rspamd-[\w-]*|x-proofpoint-[\w-]*|x-mimecast-[\w-]*|x-barracuda-[\w-]*|x-cmae-[\w-]*|"
    rb"x-ironport-[\w-]*|x-sieve[\w-]*|x-uid|x-keywords|status|x-status|x-mozilla-[\w-]*|content-length|lines|"
    rb"x-imapbase|x-apple-[\w-]*|x-gmail-labels|x-gm-thrid|x-sender-ip|x-source-ip|x-originating-ip|x-mailgun-[\w-]*)",
    re.IGNORECASE)
_FIELD_NAME = re.compile(rb"([!-9;-~]+)[ \t]*:")
_MBOX_FROM = re.compile(rb"From [^\n]*\n")


def mail_fingerprint(raw: bytes) -> str:
    """sha256 (hex) of the mail with line endings unified and the headers added in transit left out.

    One pass over the bytes: linear in the mail's size whatever its header block looks like.
    """
    data = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if data.startswith(b"From "):  # an mbox separator line is not part of the mail
        found = _MBOX_FROM.match(data)
        data = data[found.end():] if found else data
    digest = hashlib.sha256()
    pos, keep = 0, True
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        line = data[pos:end]
        if line == b"\n":
            break  # the body starts
        if line[:1] in (b" ", b"\t"):
            pass  # a continuation line belongs to the field above it
        else:
            name = _FIELD_NAME.match(line)
            if name is None:
                break  # not a header line: the rest is body as the parser will read it
            keep = _ADDED_ON_THE_WAY.fullmatch(name.group(1)) is None
        if keep:
            digest.update(line)
        pos = end
    digest.update(data[pos:].rstrip(b"\n \t"))
    return digest.hexdigest()
