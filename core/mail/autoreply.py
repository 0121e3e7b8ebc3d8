"""Is this mail automatic (RFC 3834)? Then we store it but never answer it."""
from __future__ import annotations

import re

from core.mail.parse import ParsedMail

_ROBOT_LOCALPART = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|donotreply|bounces?|auto-?reply|"
    r"autoresponder|daemon|listserv|majordomo|notifications?)([+._-].*)?$", re.IGNORECASE)


def automatic_reason(mail: ParsedMail, envelope_from: str | None, loop_value: str,
                     own_addresses: frozenset[str]) -> str:
    """Why this mail must not be answered automatically, or '' when a human seems to have sent it."""
    auto_submitted = mail.header("Auto-Submitted").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"auto-submitted: {auto_submitted}"
    if mail.header("Precedence").strip().lower() in {"bulk", "junk", "list", "auto_reply"}:
        return "precedence"
    if mail.header("List-Id") or mail.header("List-Unsubscribe"):
        return "mailing list"
    suppress = mail.header("X-Auto-Response-Suppress").lower()
    if any(flag in suppress for flag in ("all", "autoreply", "oof")):
        return "x-auto-response-suppress"
    if loop_value and loop_value in mail.header_all("X-Postdesk-Loop"):
        return "our own mail came back"
    if envelope_from is not None and envelope_from.strip() in {"", "<>"}:
        return "null return path"
    if not mail.from_address:
        return "no sender"
    if mail.from_address in own_addresses:
        return "sent from our own address"
    if _ROBOT_LOCALPART.match(mail.from_address.split("@", 1)[0]):
        return "robot sender"
    return ""
